#!/usr/bin/env bash
# bench-scale.sh — the scale benchmark of issue 14: `mailvault import` against
# `mu index` (Debian maildir-utils) on the same Maildir, in the same run, at
# each size, and what an operator does next on the imported archive.
#
#   ./scripts/bench-scale.sh                  # sizes 6046 (the corpus) and 200000
#   ./scripts/bench-scale.sh 6046 200000 1000000
#   ./scripts/bench-scale.sh --help
#
# For each size N: the Maildir is the SpamAssassin corpus itself for 6046,
# otherwise scripts/amplify-corpus.sh N (N distinct messages, kept in
# ~/.cache/mailvault/scale-N and reused). Then, each as its own process under
# GNU time (wall, user + sys CPU, peak RSS):
#   1. `mailvault import --account scale MAILDIR` into an empty data directory
#      and `mu init && mu index` into an empty mu home, alternating which goes
#      first from one size to the next (odd sizes in the list: mailvault
#      first), so that neither always gets the warmer page cache;
#   2. `mailvault status --json`, `mailvault verify --json`, `mailvault reindex`;
#   3. `mailvault serve` (archive only) with an admin user and an API token:
#      a fixed list of 20 queries, ROUNDS (default 5) times each, through
#      curl: GET /api/search (50 a page), GET / (the search page with facets
#      and timeline, logged in), and a deep page (the API's cursor followed
#      DEEP pages of 50, default 100 = results 5,000–5,050, then 20 timed
#      requests of that page); p50 and p95 of curl's time_total.
# On disk: `du` of the data directory (blobs = the mail itself, catalog,
# index, ledger, users) against `du` of the Maildir; mu's is its Xapian store
# alone (mu leaves the mail in the Maildir). Apparent = sum of file sizes.
#
# It prints one Markdown table per size (commit, machine, date, load) on
# stdout, for docs/benchmarks.md; progress goes to stderr. Needs Go, curl,
# /usr/bin/time (package time) and mu (maildir-utils): installed with apt-get
# when missing and run as root. Disk: about 25 KB a message free (Maildir
# ~7 KB, data directory ~8 KB, mu ~5 KB, the reindex's new index beside the
# old): 1,000,000 needs ~25 GB, checked before each size. KEEP=1 keeps the
# data directories (printed) instead of removing them after each size.
# PROFILE_DIR=DIR writes a CPU profile of each import there (import-N.cpu,
# through MAILVAULT_CPUPROFILE; `go tool pprof -top DIR/import-N.cpu`).
# LAYOUT=pack makes each archive with `mailvault store init --layout pack`
# first (the store in pack segments; the default is one file per blob).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
die() {
	echo "bench-scale.sh: $*" >&2
	exit 1
}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(6046 200000)
for n in "${sizes[@]}"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "a size must be a positive integer, not '$n' (see --help)"
done
rounds="${ROUNDS:-5}"
deep="${DEEP:-100}"

need=()
[ -x /usr/bin/time ] || need+=(time)
command -v mu >/dev/null 2>&1 || need+=(maildir-utils)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null
work="$(mktemp -d "${BENCH_WORK:-${TMPDIR:-/tmp}}/bench-scale.XXXXXX")"
serve_pid=""
cleanup() {
	if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
	[ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '+dirty')"
go build -o "$work/mailvault" ./cmd/mailvault
mv="$work/mailvault"
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(go version | cut -d' ' -f3), mu $(mu --version | head -1 | awk '{print $NF}')"

# timed OUT CMD...: runs CMD under GNU time, its stdout to OUT; leaves
# "wall user sys maxrss_kb exit" in $work/t.
timed() {
	local out="$1"
	shift
	local rc=0
	/usr/bin/time -f '%e %U %S %M' -o "$work/t" "$@" >"$out" 2>"$out.err" || rc=$?
	echo "$(tail -1 "$work/t") $rc" >"$work/t"
	if [ "$rc" -ne 0 ]; then
		echo "bench-scale.sh: $* exited $rc:" >&2
		tail -5 "$out.err" >&2
	fi
}
apparent() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}'; } # %d: mawk stops at 2^31-1
allocated() { du -s -B1 "$1" | cut -f1; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f", b/1e6}'; }

# Twenty queries of every kind. Until 2026-12-01 16:00 the list had "url:",
# which is not a search key: it got an instant 422, one fast request in
# twenty that flattered p50; "unsubscribe" (a common word) replaced it.
queries=(razor "subject:razor" "from:sourceforge" '"not to be"' "mortgage rates" "linux kernel"
	"has:attachment" "filename:jpg" "before:2018-08-01" "after:2020-09-01 subject:re" "larger:50k" "smaller:2k spam"
	"-subject:re perl" "(from:jm OR from:tim) python" "bank*" "aliyorsunuz" "free money" "click here" "unsubscribe" "the")
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1" 2>/dev/null || jq -rn --arg q "$1" '$q|@uri'; }
# pct FILE: "p50 p95" in ms of the seconds in FILE, one a line.
pct() { sort -n "$1" | awk '{v[NR]=$1} END {i50=int(0.5*(NR-1))+1; i95=int(0.95*(NR-1))+1; printf "%.1f %.1f", v[i50]*1000, v[i95]*1000}'; }

web_bench() { # data-dir; prints three lines: "api p50 p95 n", "page p50 p95 n", "deep p50 p95 n"
	local data="$1" port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo bench-password | "$mv" user add bench --role admin --data "$data" >/dev/null 2>&1
	local token
	token="$("$mv" user token bench --data "$data" 2>/dev/null)"
	"$mv" serve --data "$data" --web-listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
	serve_pid=$!
	local base="http://127.0.0.1:$port" i
	for i in $(seq 1 300); do
		curl -fs -o /dev/null -H "Authorization: Bearer $token" "$base/api/status" && break
		kill -0 "$serve_pid" 2>/dev/null || die "serve exited: $(tail -3 "$work/serve.log")"
		sleep 0.2
	done
	curl -fs -c "$work/jar" -b "$work/jar" -o /dev/null -H "Origin: $base" \
		--data-urlencode name=bench --data-urlencode password=bench-password "$base/login" || die "web login failed"
	: >"$work/api"
	: >"$work/page"
	local q e code
	for _ in $(seq 1 "$rounds"); do
		for q in "${queries[@]}"; do
			e="$(urlenc "$q")"
			read -r code t < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $token" "$base/api/search?q=$e")
			[ "$code" = 200 ] || [ "$code" = 422 ] || die "GET /api/search?q=$e: $code"
			echo "$t" >>"$work/api"
			read -r code t < <(curl -s -o /dev/null -b "$work/jar" -w '%{http_code} %{time_total}\n' "$base/?q=$e")
			[ "$code" = 200 ] || [ "$code" = 422 ] || die "GET /?q=$e: $code"
			echo "$t" >>"$work/page"
		done
	done
	# The deep page: follow the API's own cursor, newest first.
	local cursor="" all
	all="$(urlenc "after:1990-01-01")"
	for _ in $(seq 1 "$deep"); do
		cursor="$(curl -fs -H "Authorization: Bearer $token" "$base/api/search?limit=50&q=$all&cursor=$cursor" | jq -r '.next_cursor // empty')"
		[ -n "$cursor" ] || break
		cursor="$(urlenc "$cursor")"
	done
	: >"$work/deep"
	for _ in $(seq 1 20); do
		curl -fs -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$base/api/search?limit=50&q=$all&cursor=$cursor" >>"$work/deep"
	done
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=""
	echo "api $(pct "$work/api") $(wc -l <"$work/api")"
	echo "page $(pct "$work/page") $(wc -l <"$work/page")"
	echo "deep $(pct "$work/deep") $(wc -l <"$work/deep")"
}

command -v jq >/dev/null 2>&1 || die "needs jq (apt-get install -y jq)"
idx=0
for n in "${sizes[@]}"; do
	idx=$((idx + 1))
	free_kb=$(df -Pk "$work" | awk 'NR==2 {print $4}')
	want_kb=$((n * 25))
	[ -d "$HOME/.cache/mailvault/scale-$n/maildir" ] && want_kb=$((n * 18))
	[ "$free_kb" -ge "$want_kb" ] || die "size $n needs about $((want_kb / 1048576 + 1)) GB free under $work and ${MAILVAULT_SCALE:-$HOME/.cache/mailvault}, $((free_kb / 1048576)) GB are"
	if [ "$n" = 6046 ]; then
		maildir="$MAILVAULT_CORPUS/maildir"
	else
		maildir="$(./scripts/amplify-corpus.sh "$n")"
	fi
	msgs=$(find "$maildir" \( -path '*/cur/*' -o -path '*/new/*' \) -type f | wc -l)
	[ "$msgs" -eq "$n" ] || die "$maildir holds $msgs messages, want $n"
	raw_app=$(apparent "$maildir")
	raw_alloc=$(allocated "$maildir")
	data="$work/data-$n"
	muhome="$work/mu-$n"
	rm -rf "$data" "$muhome"
	started="$(date -u '+%Y-%m-%d %H:%M')"
	load0="$(cut -d' ' -f1 /proc/loadavg)"

	run_mv() {
		echo "bench-scale.sh: $n: mailvault import" >&2
		sync
		local prof=""
		[ -z "${PROFILE_DIR:-}" ] || prof="$(realpath -m "$PROFILE_DIR")/import-$n.cpu"
		[ -z "$prof" ] || mkdir -p "$(dirname "$prof")"
		if [ -n "${LAYOUT:-}" ]; then
			"$mv" store init --layout "$LAYOUT" --data "$data" >/dev/null || die "store init --layout $LAYOUT failed"
		fi
		timed "$work/import.out" env MAILVAULT_CPUPROFILE="$prof" "$mv" import --data "$data" --account scale --json "$maildir"
		read -r mv_wall mv_user mv_sys mv_rss mv_rc <"$work/t"
	}
	run_mu() {
		echo "bench-scale.sh: $n: mu index" >&2
		sync
		mu init --muhome="$muhome" --maildir="$maildir" >/dev/null
		timed "$work/mu.out" mu index --muhome="$muhome"
		read -r mu_wall mu_user mu_sys mu_rss mu_rc <"$work/t"
	}
	if [ $((idx % 2)) -eq 1 ]; then
		order="mailvault first"
		run_mv
		run_mu
	else
		order="mu first"
		run_mu
		run_mv
	fi
	load1="$(cut -d' ' -f1 /proc/loadavg)"
	stored=$(jq -r '.stored // .Stored // empty' "$work/import.out" 2>/dev/null || true)
	data_app=$(apparent "$data")
	data_alloc=$(allocated "$data")
	mu_app=$(apparent "$muhome")
	mu_alloc=$(allocated "$muhome")
	idx_app=$(apparent "$data/index" 2>/dev/null || echo 0)
	parts="" # the data directory's largest parts, file bytes
	for p in packs blobs catalog.db ledger imapsearch.sig; do
		[ -e "$data/$p" ] && parts="$parts, $p $(mb "$(apparent "$data/$p")") MB"
	done

	echo "bench-scale.sh: $n: status, verify, reindex" >&2
	timed "$work/status.out" "$mv" status --json --data "$data"
	read -r st_wall _ _ st_rss st_rc <"$work/t"
	timed "$work/verify.out" "$mv" verify --json --data "$data"
	read -r ve_wall ve_user ve_sys ve_rss ve_rc <"$work/t"
	timed "$work/reindex.out" "$mv" reindex --data "$data"
	read -r re_wall re_user re_sys re_rss re_rc <"$work/t"
	timed "$work/verify2.out" "$mv" verify --json --data "$data"
	read -r _ _ _ _ ve2_rc <"$work/t"

	echo "bench-scale.sh: $n: web search" >&2
	web_bench "$data" >"$work/web"
	read -r _ api50 api95 apin < <(grep '^api ' "$work/web")
	read -r _ page50 page95 pagen < <(grep '^page ' "$work/web")
	read -r _ deep50 deep95 deepn < <(grep '^deep ' "$work/web")

	row() { # name wall user sys rss_kb rc
		awk -v name="$1" -v w="$2" -v u="$3" -v s="$4" -v r="$5" -v rc="$6" -v n="$n" \
			'BEGIN {printf "| %s | %.2f | %.0f | %.0f | %.0f | %.0f |%s\n", name, w, n/w, w/n*1e6, (u+s)/n*1e6, r/1024, (rc == 0 ? "" : " exit " rc " |")}'
	}
	echo
	echo "### $n messages"
	echo
	echo "Commit $commit, $machine; $started UTC; load average $load0 at the start, $load1 after both imports; $order; store layout ${LAYOUT:-files}."
	echo "Maildir: $msgs messages, $(mb "$raw_app") MB in files, $(mb "$raw_alloc") MB allocated."
	echo
	echo "| tool | wall s | msg/s | µs/msg (wall) | µs/msg (CPU) | peak RSS MB |"
	echo "|---|---|---|---|---|---|"
	row "mailvault import" "$mv_wall" "$mv_user" "$mv_sys" "$mv_rss" "$mv_rc"
	row "mu index" "$mu_wall" "$mu_user" "$mu_sys" "$mu_rss" "$mu_rc"
	awk -v a="$mv_wall" -v b="$mu_wall" 'BEGIN {printf "| mailvault / mu speed | %.2f× | | | | |\n", b/a}'
	echo
	echo "| on disk | file bytes MB | × Maildir | allocated MB | × Maildir |"
	echo "|---|---|---|---|---|"
	awk -v a="$data_app" -v b="$data_alloc" -v ra="$raw_app" -v rb="$raw_alloc" \
		'BEGIN {printf "| mailvault data directory (mail + catalog + index + ledger) | %.0f | %.2f | %.0f | %.2f |\n", a/1e6, a/ra, b/1e6, b/rb}'
	awk -v a="$idx_app" -v ra="$raw_app" 'BEGIN {printf "| of which the index | %.0f | %.2f | | |\n", a/1e6, a/ra}'
	echo "| of which (file bytes) | ${parts#, } | | | |"
	awk -v a="$mu_app" -v b="$mu_alloc" -v ra="$raw_app" -v rb="$raw_alloc" \
		'BEGIN {printf "| mu (index only; the mail stays in the Maildir) | %.0f | %.2f | %.0f | %.2f |\n", a/1e6, a/ra, b/1e6, b/rb}'
	echo
	echo "| mailvault step | wall s | peak RSS MB | result |"
	echo "|---|---|---|---|"
	printf '| status --json | %s | %.0f | exit %s |\n' "$st_wall" "$(awk -v r="$st_rss" 'BEGIN {print r/1024}')" "$st_rc"
	printf '| verify --json | %s | %.0f | exit %s%s |\n' "$ve_wall" "$(awk -v r="$ve_rss" 'BEGIN {print r/1024}')" "$ve_rc" \
		"$(jq -r '"; " + ([to_entries[] | select(.value|type=="number") | "\(.key) \(.value)"] | join(", "))' "$work/verify.out" 2>/dev/null | cut -c1-200)"
	printf '| reindex | %s | %.0f | exit %s; %.2f× the import; verify after it: exit %s |\n' "$re_wall" "$(awk -v r="$re_rss" 'BEGIN {print r/1024}')" "$re_rc" \
		"$(awk -v a="$re_wall" -v b="$mv_wall" 'BEGIN {print a/b}')" "$ve2_rc"
	echo
	echo "| web (\`mailvault serve\`, curl over loopback) | requests | p50 ms | p95 ms |"
	echo "|---|---|---|---|"
	echo "| GET /api/search, 20 queries × $rounds | $apin | $api50 | $api95 |"
	echo "| GET / (search page: facets, timeline) | $pagen | $page50 | $page95 |"
	echo "| deep page: the API's cursor followed $deep pages of 50 | $deepn | $deep50 | $deep95 |"
	[ -z "$stored" ] || echo && echo "Import summary: $(jq -c '{stored, duplicates, parse_errors, file_errors} | with_entries(select(.value != null))' "$work/import.out" 2>/dev/null || true)"
	if [ "${KEEP:-}" = 1 ]; then
		echo "bench-scale.sh: kept $data and $muhome" >&2
	else
		rm -rf "$data" "$muhome"
	fi
done
