#!/usr/bin/env bash
# IMAP SEARCH benchmark (issue 4): every query of the conformance suite on
# Dovecot's own `UID SEARCH` (no FTS plugin) and on mailvault's translator,
# over the same corpus mailbox, in the same run; medians and 95th
# percentiles in Markdown on stdout, progress on stderr.
#
#   ./scripts/bench-imapsearch.sh > imapsearch-results.md
#   ./scripts/bench-imapsearch.sh prefilter > prefilter-results.md
#
# With "prefilter": TestBenchIMAPSearchPrefilter instead (issue 14), one
# 10,000-message folder of the amplified corpus (scripts/amplify-corpus.sh
# 200000 first; MAILVAULT_SCALE_MAILDIR, MAILVAULT_SCALE_FOLDER) on
# Dovecot and on mailvault with and without the prefilter.
#
# The benchmark is TestBenchIMAPSearch in indexer/imapsearch_bench_test.go,
# built only with the bench tag. By hand:
#   go test -tags bench -run '^TestBenchIMAPSearch$' -v -timeout 30m ./indexer/
# Needs Go and dovecot-imapd (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench-imapsearch.sh: apt-get install -y dovecot-imapd first" >&2
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-core dovecot-imapd >&2
fi
export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >&2
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(go version | cut -d' ' -f3), Dovecot $(/usr/sbin/dovecot --version 2>/dev/null | cut -d' ' -f1)."
echo "Code: commit $(git rev-parse --short HEAD). Command: \`./scripts/bench-imapsearch.sh${1:+ $1}\`; $(date -u '+%Y-%m-%d %H:%M UTC')."
test='^TestBenchIMAPSearch$'
if [ "${1:-}" = prefilter ]; then
	test='^TestBenchIMAPSearchPrefilter$'
fi
MAILVAULT_BENCH_REPORT="$report" go test -tags bench -count=1 -run "$test" -v -timeout 40m ./indexer/ >&2
cat "$report"
