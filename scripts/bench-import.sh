#!/usr/bin/env bash
# Import benchmark (issue 2): `mailvault import` of the SpamAssassin corpus
# Maildir against `mu index` (Debian maildir-utils) of the same Maildir, in the
# same run, alternating, RUNS times each. Prints a Markdown table for
# docs/benchmarks.md: messages/s, peak RSS, bytes on disk against the raw Maildir.
#
#   ./scripts/bench-import.sh            # RUNS=3
#
# Needs /usr/bin/time (package time) and mu (package maildir-utils); installs
# them when missing and run as root. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"

need=()
[ -x /usr/bin/time ] || need+=(time)
command -v mu >/dev/null 2>&1 || need+=(maildir-utils)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null
maildir="$MAILVAULT_CORPUS/maildir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailvault" ./cmd/mailvault

msgs=$(find "$maildir" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l)
raw_apparent=$(find "$maildir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
raw_alloc=$(du -s -B1 "$maildir" | cut -f1)

# apparent bytes of the files under a directory, and allocated bytes (du)
sizes() { echo "$(find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s}') $(du -s -B1 "$1" | cut -f1)"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(go version | cut -d' ' -f3), mu $(mu --version | head -1 | awk '{print $NF}')"
echo "corpus: $msgs messages, $raw_apparent bytes in files ($raw_alloc allocated)"
echo
echo "| run | tool | seconds | msg/s | peak RSS MB | on disk (file bytes) | × raw | on disk (allocated) | × raw |"
echo "|---|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$runs"); do
	rm -rf "$work/data"
	sync
	/usr/bin/time -f '%e %M' -o "$work/t" "$work/mailvault" import --data "$work/data" --account sa "$maildir" >/dev/null
	read -r secs rss <"$work/t"
	read -r app alloc < <(sizes "$work/data")
	awk -v i="$i" -v s="$secs" -v r="$rss" -v n="$msgs" -v a="$app" -v b="$alloc" -v ra="$raw_apparent" -v rb="$raw_alloc" \
		'BEGIN {printf "| %d | mailvault import | %.2f | %.0f | %.0f | %d | %.2f | %d | %.2f |\n", i, s, n/s, r/1024, a, a/ra, b, b/rb}'

	rm -rf "$work/mu"
	sync
	mu init --muhome="$work/mu" --maildir="$maildir" >/dev/null
	/usr/bin/time -f '%e %M' -o "$work/t" mu index --muhome="$work/mu" >/dev/null 2>&1
	read -r secs rss <"$work/t"
	read -r app alloc < <(sizes "$work/mu")
	awk -v i="$i" -v s="$secs" -v r="$rss" -v n="$msgs" -v a="$app" -v b="$alloc" -v ra="$raw_apparent" -v rb="$raw_alloc" \
		'BEGIN {printf "| %d | mu index (index only; mail stays in the Maildir) | %.2f | %.0f | %.0f | %d | %.2f | %d | %.2f |\n", i, s, n/s, r/1024, a, a/ra, b, b/rb}'
done
