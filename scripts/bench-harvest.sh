#!/usr/bin/env bash
# Harvester benchmarks (issue 3), each with its peer measured in the same run,
# against private Dovecot servers (harvest/dovecottest):
#
#   1. cold harvest + index of the SpamAssassin corpus over implicit TLS on
#      loopback, against `mbsync -a` (Debian isync) copying the same account
#      into an empty Maildir; alternating, RUNS times each;
#   2. delivery-to-searchable latency: 200 APPENDs with the harvester IDLE on
#      INBOX, next to a bare client IDLE-ing (Dovecot's own notify delay);
#   3. ACCOUNTS (1,000) accounts harvested and idle in one process: RSS, heap,
#      goroutines;
#   4. (ONLY=Mailbox, not in the default set: 10-20 minutes at 100,000) the
#      cold harvest of ONE mailbox of MAILBOX_N (100,000) distinct messages,
#      hard-linked from the amplified scale set (scripts/amplify-corpus.sh;
#      the smallest complete set of at least MAILBOX_N under $MAILVAULT_SCALE,
#      default ~/.cache/mailvault, else it is made), against mbsync of the
#      same account; RUNS times each, alternating which goes first; target
#      mailvault ≤ 1.0× mbsync's time. CPUPROFILE=FILE profiles one extra
#      mailvault run (outside the table; `go tool pprof -top FILE`).
#
#   ./scripts/bench-harvest.sh > harvest-results.md   # tables on stdout,
#                                                     # progress on stderr
#   RUNS=5 ACCOUNTS=200 ./scripts/bench-harvest.sh
#   ONLY=Latency ./scripts/bench-harvest.sh          # any of Corpus Latency Accounts Mailbox
#   ONLY=Mailbox RUNS=1 MAILBOX_N=20000 ./scripts/bench-harvest.sh
#
# The benchmarks are Go tests in harvest/bench_test.go, built only with the
# bench tag; this script builds them and runs each in a process of its own.
# By hand:
#   go test -tags bench -run TestBenchHarvestCorpus -v -timeout 180m ./harvest/   # or Mailbox, ...
# Needs Go, dovecot-imapd,
# isync (mbsync) and time (GNU time, for mbsync's peak RSS): installs the
# Debian packages that are missing when run as root. Run it on an otherwise
# idle machine: the two sides share its cores with Dovecot.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mbsync >/dev/null 2>&1 || need+=(isync)
[ -x /usr/bin/time ] || need+=(time)
{ command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; } || need+=(dovecot-imapd)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench-harvest.sh: missing Debian packages: ${need[*]} (apt-get install -y ${need[*]})" >&2
		exit 1
	fi
	echo "bench-harvest.sh: installing ${need[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
report="$work/report.md"
: >"$report"

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(go version | cut -d' ' -f3), Dovecot $(/usr/sbin/dovecot --version 2>/dev/null | cut -d' ' -f1), $(mbsync --version 2>/dev/null | head -1)"
echo "bench-harvest.sh: $machine; $(uptime)" >&2

export MAILVAULT_BENCH_REPORT="$report"
[ -z "${RUNS:-}" ] || export MAILVAULT_BENCH_RUNS="$RUNS"
[ -z "${ACCOUNTS:-}" ] || export MAILVAULT_BENCH_ACCOUNTS="$ACCOUNTS"
[ -z "${APPENDS:-}" ] || export MAILVAULT_BENCH_APPENDS="$APPENDS"
[ -z "${MAILBOX_N:-}" ] || export MAILVAULT_BENCH_MAILBOX_N="$MAILBOX_N"
[ -z "${CPUPROFILE:-}" ] || export MAILVAULT_BENCH_CPUPROFILE="$(realpath -m "$CPUPROFILE")"
# One process per benchmark, so that each starts from a clean heap (the
# memory figures of the accounts benchmark are of the whole process).
go test -c -tags bench -o "$work/bench.test" ./harvest/ || { echo "bench-harvest.sh: build failed" >&2; exit 1; }
# What was built: others may be editing the tree.
code="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
dirty="$(git status --porcelain -- harvest indexer query service internal 2>/dev/null | awk '$1 != "??" {print $2}' | tr '\n' ' ' | sed 's/ $//')"
[ -z "$dirty" ] || code="$code, with uncommitted changes to $dirty"
status=0
for b in ${ONLY:-Corpus Latency Accounts}; do
	echo "bench-harvest.sh: TestBenchHarvest$b; $(uptime)" >&2
	(cd harvest && "$work/bench.test" -test.run "^TestBenchHarvest$b\$" -test.v -test.count=1 -test.timeout 180m) >&2 || status=$?
done

echo "Machine: $machine."
echo "Code: $code."
echo "Command: \`${GOMEMLIMIT:+GOMEMLIMIT=$GOMEMLIMIT }${ONLY:+ONLY=\"$ONLY\" }${RUNS:+RUNS=$RUNS }${MAILBOX_N:+MAILBOX_N=$MAILBOX_N }${CPUPROFILE:+CPUPROFILE=$CPUPROFILE }./scripts/bench-harvest.sh\`; finished $(date -u '+%Y-%m-%d %H:%M') UTC."
cat "$report"
if [ "$status" -ne 0 ]; then
	echo
	echo "**go test failed (exit $status): see its output above (stderr).**"
fi
exit "$status"
