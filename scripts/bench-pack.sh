#!/usr/bin/env bash
# Store layout benchmark (issue 14, item 3): `mailvault import` into a new
# archive made with `mailvault store init --layout files` and with
# `--layout pack`, alternating, RUNS times each, on two sets of mail:
#   corpus  the SpamAssassin corpus Maildir (6,046 messages)
#   small   N_SMALL (default 20,000) small distinct messages, ~460 bytes each
# Prints a Markdown table for docs/benchmarks.md: import seconds, msg/s, the
# store's on-disk bytes (du) and file count, the whole data directory's du,
# and the time of a `mailvault verify` (every blob re-read and re-hashed).
#
#   ./scripts/bench-pack.sh              # RUNS=3
#
# Needs /usr/bin/time (package time). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
nsmall="${N_SMALL:-20000}"
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailvault" ./cmd/mailvault

# The small set: distinct messages of about 460 bytes.
small="$work/small"
mkdir -p "$small/cur" "$small/new" "$small/tmp"
awk -v n="$nsmall" -v dir="$small/cur" 'BEGIN {
	srand(14)
	for (i = 0; i < n; i++) {
		f = sprintf("%s/%d.eml:2,S", dir, i)
		printf "From: sender%d@example.org\r\nTo: team@example.org\r\nSubject: status %d\r\nMessage-ID: <%d.bench@example.org>\r\nDate: Mon, 4 Mar 2024 10:%02d:00 +0000\r\n\r\n", i % 97, i, i, i % 60 > f
		for (j = 0; j < 6; j++) printf "line %d of note %d: build %d passed, queue %d\r\n", j, i, int(rand() * 100000), int(rand() * 1000) > f
		close(f)
	}
}'

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)')"
echo
echo "| set | messages | raw bytes | run | layout | import s | msg/s | store du MB | store files | data dir du MB | verify s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for set in corpus small; do
	if [ "$set" = corpus ]; then md="$MAILVAULT_CORPUS/maildir"; else md="$small"; fi
	msgs=$(find "$md" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l)
	raw=$(find "$md" -path '*/cur/*' -type f -printf '%s\n' -o -path '*/new/*' -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
	for i in $(seq 1 "$runs"); do
		for layout in files pack; do
			rm -rf "$work/data"
			sync
			"$work/mailvault" store init --data "$work/data" --layout "$layout" >/dev/null
			/usr/bin/time -f '%e' -o "$work/t" "$work/mailvault" import --data "$work/data" --account bench "$md" >/dev/null
			secs=$(cat "$work/t")
			sync
			if [ "$layout" = files ]; then sd="$work/data/blobs"; else sd="$work/data/packs"; fi
			sdu=$(du -s -B1 "$sd" | cut -f1)
			sfiles=$(find "$sd" -type f | wc -l)
			ddu=$(du -s -B1 "$work/data" | cut -f1)
			/usr/bin/time -f '%e' -o "$work/t" "$work/mailvault" verify --data "$work/data" >/dev/null
			vsecs=$(cat "$work/t")
			awk -v set="$set" -v n="$msgs" -v raw="$raw" -v i="$i" -v l="$layout" -v s="$secs" -v sdu="$sdu" -v sf="$sfiles" -v ddu="$ddu" -v v="$vsecs" \
				'BEGIN {printf "| %s | %d | %.1f MB | %d | %s | %.2f | %.0f | %.1f | %d | %.1f | %.2f |\n", set, n, raw/1e6, i, l, s, n/s, sdu/1e6, sf, ddu/1e6, v}'
		done
	done
done
