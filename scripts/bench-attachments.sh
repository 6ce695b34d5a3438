#!/usr/bin/env bash
# Attachment text benchmark (issue 15): the SpamAssassin corpus with one
# message in ten carrying a real PDF/Office document, imported with
# attachment text extraction on and off, alternating.
#
#   1. service/extract_bench_test.go (in-process: import time, the
#      extractor's drain after it, VmHWM of the test process);
#   2. the CLI as a user runs it: `mailvault import` (waits for the
#      extractor) against `mailvault import --no-extract`, peak RSS by GNU
#      time, RUNS times each (3).
#
# Usage: scripts/bench-attachments.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,12p' "$0"; exit 0;; esac
runs="${1:-3}"
export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
[ -d "$MAILVAULT_CORPUS" ] || ./scripts/fetch-corpus.sh
work=$(mktemp -d /tmp/mailvault-bench-att.XXXXXX)
trap 'rm -rf "$work"' EXIT
BENCH_KEEP="$work/maildir" BENCH_RUNS="$runs" go test -tags bench -run TestBenchAttachmentImport -count=1 -v ./service/ |
	grep -E '^\s*(\||Machine|Median)'
go build -o "$work/mailvault" ./cmd/mailvault
echo
echo "| run | mailvault import | wall s | peak RSS MB |"
echo "|---|---|---|---|"
for run in $(seq 1 "$runs"); do
	order=("--no-extract" "")
	[ $((run % 2)) -eq 0 ] && order=("" "--no-extract")
	for flag in "${order[@]}"; do
		rm -rf "$work/data"
		/usr/bin/time -f '%e %M' -o "$work/time" "$work/mailvault" import --data "$work/data" --account bench $flag "$work/maildir" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
		read -r wall kb <"$work/time"
		echo "| $run | ${flag:-(extraction on, waits for it)} | $wall | $((kb / 1024)) |"
	done
done
