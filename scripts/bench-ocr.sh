#!/usr/bin/env bash
# bench-ocr.sh: the OCR extra's cost (ms a page, the child's peak RSS),
# mailvault's OCR against tesseract and pdftoppm run directly, alternating
# pair by pair in each round (BenchmarkOCR in indexer/extract/ocr_test.go).
# Not run by CI; figures go to docs/benchmarks.md, "OCR".
#
#   scripts/bench-ocr.sh [ROUNDS]     # default 5 rounds, 2 iterations each
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi
rounds=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/extract.test" ./indexer/extract/
echo "commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
	(cd indexer/extract && "$tmp/extract.test" -test.run '^$' -test.bench '^BenchmarkOCR$' -test.benchtime 2x) | grep '^BenchmarkOCR'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
