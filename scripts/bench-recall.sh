#!/usr/bin/env bash
# Recall benchmark (issue 13): the queries of indexer/testdata/recall.tsv on
# the SpamAssassin corpus Maildir, hit counts of mailvault and mu (Debian
# maildir-utils) side by side, and of notmuch (Debian notmuch) when it is
# installed. notmuch has the same from: subject: body: (words and quoted
# phrases); its to: matches To, Cc and Bcc, so its to: counts are not
# mailvault's to:; it has no cc:, shown as "–". Its database lives in the
# scratch directory (database.mail_root is the corpus Maildir, which stays
# untouched).
# Prints a Markdown table for docs/benchmarks.md and the bytes of
# mailvault's index. With UPDATE=1 it rewrites the mu column of recall.tsv,
# which TestRecallAgainstMu (indexer) holds mailvault to.
#
#   ./scripts/bench-recall.sh
#   UPDATE=1 ./scripts/bench-recall.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v mu >/dev/null 2>&1 || { echo "bench-recall: mu not found (apt-get install maildir-utils)" >&2; exit 1; }
export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null
maildir="$MAILVAULT_CORPUS/maildir"
tsv=indexer/testdata/recall.tsv
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailvault" ./cmd/mailvault

"$work/mailvault" import --data "$work/data" --account sa "$maildir" >/dev/null
mu init --muhome="$work/mu" --maildir="$maildir" >/dev/null
mu index --muhome="$work/mu" >/dev/null 2>&1
nm=""
if command -v notmuch >/dev/null 2>&1; then
	printf '[database]\nmail_root=%s\npath=%s\n[new]\ntags=\n' "$maildir" "$work/notmuch" >"$work/notmuch-config"
	mkdir -p "$work/notmuch"
	NOTMUCH_CONFIG="$work/notmuch-config" notmuch new >/dev/null 2>&1 && nm=1 || echo "bench-recall: notmuch new failed: no notmuch column" >&2
fi

mvcount() { "$work/mailvault" search --data "$work/data" --limit 1 "$1" 2>&1 | grep -o 'of [0-9,]* matching' | tr -dc 0-9 || true; }
mucount() { { mu find --muhome="$work/mu" "$1" --fields=l 2>/dev/null || true; } | wc -l; }
nmcount() {
	case "$1" in cc:*) echo "–" ;; *) NOTMUCH_CONFIG="$work/notmuch-config" notmuch count "$1" 2>/dev/null ;; esac
}

echo "mu $(mu --version | head -1 | awk '{print $NF}')${nm:+, notmuch $(notmuch --version | awk '{print $NF}')}, $(go version | cut -d' ' -f3), index $(du -sb "$work/data/index" | cut -f1) bytes, data dir $(du -sb "$work/data" | cut -f1) bytes, Maildir $(find "$maildir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}') bytes"
echo
if [ -n "$nm" ]; then
	echo "| query | mu | notmuch | mailvault | mailvault ≥ mu |"
	echo "|---|---|---|---|---|"
else
	echo "| query | mu | mailvault | mailvault ≥ mu |"
	echo "|---|---|---|---|"
fi
new="$work/recall.tsv"
grep '^#' "$tsv" >"$new"
grep -v '^#' "$tsv" | while IFS=$'\t' read -r q _; do
	[ -n "$q" ] || continue
	m=$(mucount "$q")
	v=$(mvcount "$q")
	ok=yes
	[ "${v:-0}" -ge "$m" ] || ok=NO
	if [ -n "$nm" ]; then
		echo "| \`$q\` | $m | $(nmcount "$q") | $v | $ok |"
	else
		echo "| \`$q\` | $m | $v | $ok |"
	fi
	printf '%s\t%s\n' "$q" "$m" >>"$new"
done
if [ "${UPDATE:-}" = 1 ]; then
	cp "$new" "$tsv"
	echo
	echo "rewrote $tsv"
fi
