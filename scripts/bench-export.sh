#!/usr/bin/env bash
# Export benchmark (issue 11): the production set and mbox against copying
# the raw mail out of the store, in the same run (service/bench_test.go).
#
# It runs twice: with the exports on a freshly made ext4 file system in a
# loop-mounted image (needs root; a file system with no history, so that
# creating files costs the same in every run), then in the default temporary
# directory, the machine's file system as it is. Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
[ -d "$MAILVAULT_CORPUS" ] || ./scripts/fetch-corpus.sh
bench() { go test -tags bench -run TestBenchExport -count=1 -v -timeout 30m ./service/ | grep -E '^\s*(\||Machine|Median|---|ok|FAIL)'; }

if [ "$(id -u)" = 0 ]; then
	img=$(mktemp /tmp/mailvault-bench-ext4.XXXXXX)
	mnt=$(mktemp -d /tmp/mailvault-bench-mnt.XXXXXX)
	trap 'umount "$mnt" 2>/dev/null || true; rm -f "$img"; rmdir "$mnt" 2>/dev/null || true' EXIT
	truncate -s 4G "$img"
	mkfs.ext4 -q -F "$img"
	mount -o loop "$img" "$mnt"
	echo "== exports on a new ext4 file system ($img on $mnt)"
	BENCH_OUT="$mnt" bench
else
	echo "== not root: no new ext4 file system; the run below only"
fi
echo "== exports in ${TMPDIR:-/tmp} (the machine's file system as it is)"
bench
