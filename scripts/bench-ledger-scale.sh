#!/usr/bin/env bash
# bench-ledger-scale.sh — the tamper-evident ledger (issue 12) on a real
# archive of N messages: the scale set of scripts/amplify-corpus.sh imported
# by `mailvault import` into a fresh data directory with a ledger key, then
# ledger status, `ledger verify --no-blobs`, `ledger verify` (with the blob
# re-hash), and `prove` + `verify-proof` of 20 messages spread over the
# archive (one per folder, from `search --json`). Prints a Markdown table
# (docs/benchmarks.md, "## Ledger (issue 12)").
#
#   ./scripts/bench-ledger-scale.sh 200000
#
# Times and peak RSS from GNU time (/usr/bin/time; bash's time and no RSS
# without it). The scale set stays in its cache (amplify-corpus.sh); the
# archive is made in ${BENCH_WORK:-a new /tmp/mailvault-ledger-scale.XXXXXX}
# and removed at the end unless KEEP=1 (it is about 2× the set). A command
# that fails is reported in the table with its exit code and stderr's last
# line, and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
die() {
	echo "bench-ledger-scale.sh: $*" >&2
	exit 1
}
[ $# -eq 1 ] || die "usage: $0 N"
n="$1"

maildir="$(./scripts/amplify-corpus.sh "$n")" || die "amplify-corpus.sh failed"
work="${BENCH_WORK:-$(mktemp -d /tmp/mailvault-ledger-scale.XXXXXX)}"
mkdir -p "$work"
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
data="$work/data"
[ ! -e "$data" ] || die "$data exists: give an empty BENCH_WORK"
mv_="$work/mailvault"
go build -o "$mv_" ./cmd/mailvault || die "go build failed"
unset MAILVAULT_DATA

"$mv_" key init --out "$work/key/ledger.key" --name "mailvault/scale-$n" >/dev/null || die "key init failed"
export MAILVAULT_LEDGER_KEY="$work/key/ledger.key"
pub="$work/key/ledger.key.pub"

rows=()
row() { rows+=("| $* |"); }

# timed NAME CMD...: runs CMD (stdout to $work/NAME.out, stderr to
# $work/NAME.err), leaves "seconds peakRSS_KB rc" in $work/NAME.t.
timed() {
	local name="$1"
	shift
	local rc
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"
		rc=$?
		read -r secs rss < <(tail -1 "$work/$name.time")
	else
		local t0 t1
		t0=$(date +%s.%N)
		"$@" >"$work/$name.out" 2>"$work/$name.err"
		rc=$?
		t1=$(date +%s.%N)
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')
		rss="n/a"
	fi
	echo "$secs $rss $rc" >"$work/$name.t"
	return $rc
}
mb() { [ "$1" = n/a ] && echo n/a || awk -v k="$1" 'BEGIN {printf "%.0f", k/1024}'; }
failnote() { echo "FAILED (exit $1): $(tail -1 "$work/$2.err" | cut -c1-200)"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(go version | cut -d' ' -f3); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "code: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes in the tree)')" >&2
set_bytes=$(sed -n 's/^bytes=//p' "$maildir/../.complete")
echo "scale set: $maildir ($n messages, $set_bytes bytes); archive: $data" >&2
echo "$(date -u +%FT%TZ) import ..." >&2

# 1. import
timed import "$mv_" import --data "$data" --account scale --json "$maildir"
read -r secs rss rc <"$work/import.t"
if [ "$rc" = 0 ]; then
	sum="$(jq -r '"stored \(.stored), linked \(.linked), already present \(.already_present), parse errors \(.parse_errors), file errors \(.file_errors)"' "$work/import.out" 2>/dev/null)"
	row "\`import --account scale\` ($n messages, 20 folders) | $secs | $(awk -v s="$secs" -v n="$n" 'BEGIN {printf "%.0f msg/s", n/s}') | $(mb "$rss") | $sum"
else
	row "\`import --account scale\` | $secs | | $(mb "$rss") | $(failnote "$rc" import)"
fi
echo "$(date -u +%FT%TZ) import done ($secs s, rc $rc)" >&2

# 2. size and status
led="$data/ledger"
size_of() { [ -f "$1" ] && stat -c %s "$1" || echo 0; }
lb=$(size_of "$led/leaves")
ib=$(size_of "$led/index")
hb=$(size_of "$led/hashes")
all=$(du -sb "$led" 2>/dev/null | cut -f1)
data_all=$(du -sb "$data" 2>/dev/null | cut -f1)
timed status "$mv_" ledger status --data "$data" --json
read -r secs rss rc <"$work/status.t"
leaves=$(jq -r .leaves "$work/status.out" 2>/dev/null)
if [ "$rc" = 0 ]; then
	row "\`ledger status --json\` | $secs | | $(mb "$rss") | $(jq -c '{leaves, signs, checkpoint_size}' "$work/status.out")"
else
	row "\`ledger status --json\` | $secs | | $(mb "$rss") | $(failnote "$rc" status)"
fi
row "ledger size | | | | ${leaves:-?} leaves; data/ledger $all bytes (leaves $lb, index $ib, hashes $hb), $(awk -v a="$all" -v n="$n" 'BEGIN {printf "%.0f", a/n}') bytes/message; whole data dir $data_all bytes"

# 3. verify
for mode in no-blobs blobs; do
	args=(ledger verify --data "$data" --key "$pub" --json)
	label="\`ledger verify --key PUB --no-blobs\`"
	if [ "$mode" = no-blobs ]; then args+=(--no-blobs); else label="\`ledger verify --key PUB\` (re-hash every blob)"; fi
	echo "$(date -u +%FT%TZ) verify $mode ..." >&2
	timed "verify-$mode" "$mv_" "${args[@]}"
	read -r secs rss rc <"$work/verify-$mode.t"
	if jq -e . "$work/verify-$mode.out" >/dev/null 2>&1; then
		note="$(jq -r '"ok \(.ok), leaves \(.leaves), checkpoints \(.checkpoints), blobs \(.blobs), rows \(.rows|tostring), pending \(.pending|tostring), unsigned \(.unsigned), problems \(.problems|length)"' "$work/verify-$mode.out")"
		[ "$rc" = 0 ] || note="exit $rc: $note; first problem: $(jq -c '.problems[0]' "$work/verify-$mode.out" | cut -c1-200)"
	else
		note="$(failnote "$rc" "verify-$mode")"
	fi
	row "$label | $secs | | $(mb "$rss") | $note"
done

# 4. prove 20 messages, one per folder (import order: folder01 first; in a
# folder, files by name, which starts with the Date), each the newest of its
# folder before a later date (folderNN: before 2016-01 + 6·NN months), so
# they spread over the whole import.
echo "$(date -u +%FT%TZ) search + prove ..." >&2
: >"$work/shas"
search_secs=()
for f in $(seq 1 20); do
	mo=$((f * 6))
	q="before:$(printf '%d-%02d-01' $((2016 + mo / 12)) $((mo % 12 + 1)))"
	timed "search-$f" "$mv_" search --data "$data" --json --limit 1 --mailbox "$(printf 'folder%02d' "$f")" -- "$q"
	read -r secs rss rc <"$work/search-$f.t"
	search_secs+=("$secs")
	sha=$(head -1 "$work/search-$f.out" | jq -r .sha256 2>/dev/null)
	if [ "$rc" = 0 ] && [ -n "$sha" ] && [ "$sha" != null ]; then
		echo "$f $sha" >>"$work/shas"
	else
		echo "search in folder$f ($q) gave no message (exit $rc): $(tail -1 "$work/search-$f.err")" >&2
	fi
done
got=$(wc -l <"$work/shas")
row "\`search --json --limit 1 --mailbox folderNN before:…\` (to pick the 20) | $(printf '%s\n' "${search_secs[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.2f, max %.2f", a[int((NR+1)/2)], a[NR]}') | | | $got sha256s found"
pt=() vt=() prss=() maxb=0 fails=0 vfails=0 idx=()
while read -r f sha; do
	timed "prove-$f" "$mv_" prove --data "$data" --out "$work/bundle-$f.json" "$sha"
	read -r secs rss rc <"$work/prove-$f.t"
	if [ "$rc" != 0 ]; then
		fails=$((fails + 1))
		echo "prove $sha: $(failnote "$rc" "prove-$f")" >&2
		continue
	fi
	pt+=("$secs")
	prss+=("$rss")
	b=$(stat -c %s "$work/bundle-$f.json")
	[ "$b" -le "$maxb" ] || maxb=$b
	idx+=("$(jq -r '"\(.index)/\(.tree_size)"' "$work/bundle-$f.json")")
	timed "vp-$f" "$mv_" verify-proof --key "$pub" "$work/bundle-$f.json"
	read -r secs rss rc <"$work/vp-$f.t"
	vt+=("$secs")
	[ "$rc" = 0 ] || {
		vfails=$((vfails + 1))
		echo "verify-proof $sha: $(failnote "$rc" "vp-$f")" >&2
	}
done <"$work/shas"
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END {if (NR) printf "median %.2f, mean %.2f, max %.2f", a[int((NR+1)/2)], s/NR, a[NR]; else printf "–"}'; }
row "\`prove SHA\` ×${#pt[@]} (leaf index/tree size: ${idx[*]:-none}) | $(stats "${pt[@]}") | | $(mb "$(printf '%s\n' "${prss[@]:-0}" | sort -n | tail -1)") (max) | $fails failed; largest bundle $maxb bytes"
row "\`verify-proof --key PUB BUNDLE\` ×${#vt[@]} | $(stats "${vt[@]}") | | | $vfails failed"

echo
echo "| step | seconds | rate | peak RSS MB | result |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "finished $(date -u '+%F %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
