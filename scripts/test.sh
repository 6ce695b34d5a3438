#!/usr/bin/env bash
# Runs every test of mailvault: unit and integration tests (a real SQLite, a
# real Bleve index on disk, the SpamAssassin corpus end to end, SIGKILL crash
# safety) and a short run of each fuzzer. Long fuzzing and benchmarks are
# separate (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# The corpus lives outside the repo; the end-to-end tests read it from here.
export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null

echo "== third_party/go-imap is upstream plus our patch (mailvault.patch)"
./scripts/check-go-imap.sh

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== fuzz (short)"
# Execution counts, not durations: Go 1.26's timed fuzzing can fail with a
# bare "context deadline exceeded" on a busy machine (golang/go#75804).
# FUZZ_SCALE multiplies them for longer runs outside CI.
scale="${FUZZ_SCALE:-1}"
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "$((50000 * scale))x" ./indexer/mime/
go test -run '^$' -fuzz '^FuzzParseHuman$' -fuzztime "$((200000 * scale))x" ./query/
go test -run '^$' -fuzz '^FuzzParseIMAP$' -fuzztime "$((200000 * scale))x" ./query/
go test -run '^$' -fuzz '^FuzzNewView$' -fuzztime "$((30000 * scale))x" ./indexer/mime/
go test -run '^$' -fuzz '^FuzzMbox$' -fuzztime "$((50000 * scale))x" ./indexer/mailfile/
go test -run '^$' -fuzz '^FuzzUnwrap$' -fuzztime "$((100000 * scale))x" ./journal/
go test -run '^$' -fuzz '^FuzzParseEMLX$' -fuzztime "$((50000 * scale))x" ./indexer/mailfile/
go test -run '^$' -fuzz '^FuzzEMLXRoundTrip$' -fuzztime "$((20000 * scale))x" ./indexer/mailfile/
go test -run '^$' -fuzz '^FuzzParseLabels$' -fuzztime "$((20000 * scale))x" ./indexer/mailfile/
go test -run '^$' -fuzz '^FuzzLabelsRoundTrip$' -fuzztime "$((20000 * scale))x" ./indexer/mailfile/
go test -run '^$' -fuzz '^FuzzSafeNext$' -fuzztime "$((20000 * scale))x" ./web/
go test -run '^$' -fuzz '^FuzzDecodeCursor$' -fuzztime "$((20000 * scale))x" ./web/
go test -run '^$' -fuzz '^FuzzLoadFileValues$' -fuzztime "$((50000 * scale))x" ./export/
go test -run '^$' -fuzz '^FuzzRecord$' -fuzztime "$((50000 * scale))x" ./indexer/pack/
go test -run '^$' -fuzz '^FuzzStoredMessage$' -fuzztime "$((20000 * scale))x" ./imapview/
# Attachment text: any bytes under any name and type through Extract (every
# extractor), the ZIP and TNEF readers, and the image header reader of the
# OCR extra (FuzzImageSize). Minimising a large seed runs
# its extractor thousands of times: capped.
go test -run '^$' -fuzz '^FuzzExtract$' -fuzztime "$((20000 * scale))x" -fuzzminimizetime 10x ./indexer/extract/
go test -run '^$' -fuzz '^FuzzZip$' -fuzztime "$((20000 * scale))x" -fuzzminimizetime 10x ./indexer/extract/
go test -run '^$' -fuzz '^FuzzTNEF$' -fuzztime "$((50000 * scale))x" ./indexer/extract/
go test -run '^$' -fuzz '^FuzzImageSize$' -fuzztime "$((100000 * scale))x" ./indexer/extract/
# Each execution is a real TCP session (~10/s): few, and little minimising.
go test -run '^$' -fuzz '^FuzzServerResponses$' -fuzztime "$((300 * scale))x" -fuzzminimizetime 5x ./harvest/
# The QRESYNC connection's own reader (harvest/qresync.go), no sockets.
go test -run '^$' -fuzz '^FuzzQResyncResponses$' -fuzztime "$((30000 * scale))x" ./harvest/
# The Gmail side connection's X-GM items (harvest/gmail.go), no sockets.
go test -run '^$' -fuzz '^FuzzGmailFetch$' -fuzztime "$((30000 * scale))x" ./harvest/
