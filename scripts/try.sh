#!/usr/bin/env bash
# The newcomer's first command: fetch the SpamAssassin corpus, build mailvault,
# import the corpus and search it. Re-running it is quick: the corpus is cached
# and the import recognises what it already holds.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
export MAILVAULT_CORPUS="$corpus"
data="${MAILVAULT_DATA:-./mailvault-data}"

echo "== fetching the corpus (once) into $corpus"
./scripts/fetch-corpus.sh >/dev/null

echo "== building ./mailvault"
go build -o mailvault ./cmd/mailvault

echo "== importing $corpus/maildir as account 'spamassassin' into $data"
./mailvault import --data "$data" --account spamassassin "$corpus/maildir"

echo
./mailvault status --data "$data"

search() {
	echo
	echo "\$ mailvault search $*"
	./mailvault search --data "$data" "$@"
}
search --limit 5 'subject:razor from:sourceforge'
search --limit 5 '"not to be"'
search --limit 5 'has:attachment filename:jpg'
search --limit 3 --json 'before:2002-08-01 smaller:2k'

echo
echo "Try your own: ./mailvault search --data $data 'QUERY'   (./mailvault search --help)"
