#!/usr/bin/env bash
# Container and markup extraction (issue 15) against peers, alternating in
# one run: ours (BenchmarkExtractContainers) and, on the same generated
# inputs, Info-ZIP's unzip -p (decompression only, no text), Debian's tnef
# (decoding winmail.dat to files), Python's xml.etree itertext and
# html.parser (text). Peers' figures for unzip and tnef include a process
# start per document, as a caller would pay it. Figures go to
# docs/benchmarks.md, "Attachment text (issue 15)" → "Containers".
#
# Usage: scripts/bench-containers.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi
rounds="${1:-3}"
for tool in unzip tnef python3; do
	command -v "$tool" >/dev/null || { echo "bench-containers: $tool not installed" >&2; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
MAILVAULT_BENCH_INPUTS="$dir" go test -run '^$' -bench 'ExtractContainers/zip$' -benchtime 1x ./indexer/extract/ >/dev/null
echo "commit ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
ls -l "$dir" | awk 'NR>1 {print "input", $9, $5, "bytes"}'

# peer FORMAT: docs/s over 20 documents.
peer() {
	case "$1" in
	zip) python3 - "$dir/archive.zip" <<'EOF' ;;
import subprocess, sys, time
t = time.perf_counter()
for _ in range(20):
    subprocess.run(["unzip", "-p", sys.argv[1]], stdout=subprocess.DEVNULL, check=True)
print("peer unzip -p  %.1f docs/s" % (20 / (time.perf_counter() - t)))
EOF
	tnef) python3 - "$dir/winmail.dat" "$dir/tnef-out" <<'EOF' ;;
import os, subprocess, sys, time
os.makedirs(sys.argv[2], exist_ok=True)
t = time.perf_counter()
for _ in range(20):
    subprocess.run(["tnef", "-f", sys.argv[1], "-C", sys.argv[2], "--overwrite", "--save-body"], check=True)
print("peer tnef      %.1f docs/s" % (20 / (time.perf_counter() - t)))
EOF
	xml) python3 - "$dir/report.xml" <<'EOF' ;;
import sys, time, xml.etree.ElementTree as E
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
for _ in range(20):
    " ".join(E.fromstring(data).itertext())
el = time.perf_counter() - t
print("peer python xml.etree  %.1f docs/s  %.2f MB/s" % (20 / el, 20 * len(data) / el / 1e6))
EOF
	html) python3 - "$dir/minutes.html" <<'EOF' ;;
import sys, time
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.out = []; self.skip = 0
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"): self.skip += 1
    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip: self.skip -= 1
    def handle_data(self, d):
        if not self.skip: self.out.append(d)
data = open(sys.argv[1], encoding="utf-8").read()
t = time.perf_counter()
for _ in range(20):
    p = P(); p.feed(data); p.close(); " ".join(p.out)
el = time.perf_counter() - t
print("peer python html.parser  %.1f docs/s  %.2f MB/s" % (20 / el, 20 * len(data.encode()) / el / 1e6))
EOF
	esac
}

for r in $(seq "$rounds"); do
	echo "== round $r"
	for f in zip tnef xml html; do
		go test -run '^$' -bench "ExtractContainers/$f\$" -benchtime 2s ./indexer/extract/ | grep -E '^Benchmark' | awk '{print "ours", $1, $3, $4, $5, $6, $7}'
		peer "$f"
	done
done
