#!/usr/bin/env bash
# amplify-corpus.sh — a scale set of N distinct, realistic messages made from
# the SpamAssassin corpus (scripts/fetch-corpus.sh), for benchmarks at
# 200,000 messages and more (issues 12 and 14).
#
# Copy k of corpus message m (message i = k*6046 + m) gets a new Message-ID,
# a new Date (uniform over 2016-2025, in the original's zone offset), a new
# To recipient, and a few words changed (to words of the same length) and a
# line of words added in its first text/plain part, or its top-level text
# part (text/html: after <body>); quoted-printable is edited in place on
# whole ASCII words only, base64 decoded and encoded again. Every other
# header, the multipart boundaries and every other part keep their bytes
# (internal/amplify, checked over the whole corpus by its test). Messages
# whose text part has another charset, or that have none, get the header
# changes only. Deterministic: the same N and SEED give the same bytes.
#
# Layout of OUTDIR (default ${MAILVAULT_SCALE:-$HOME/.cache/mailvault}/scale-N,
# outside the repo: 200,000 messages are 1.07 GB of files, 1.4 GB on disk;
# writing them took 16 s on 2 cores):
#   maildir/                a Maildir++ tree: empty root (INBOX) and
#                           .folder01 ... .folder20, N/20 messages each
#                           (message i in folder i mod 20 + 1), file mtime =
#                           the new Date
#   .complete               marker: messages, seed, bytes, edits; when it is
#                           there a re-run only prints the paths
#
# Usage: scripts/amplify-corpus.sh N [OUTDIR]     (SEED=12 by default)
# Prints the maildir path on stdout. Needs Go (go run) and the corpus (npm for
# its first fetch).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
	echo "amplify-corpus.sh: $*" >&2
	exit 1
}
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 N [OUTDIR]"
n="$1"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$n'"
seed="${SEED:-12}"
out="${2:-${MAILVAULT_SCALE:-$HOME/.cache/mailvault}/scale-$n}"
case "$(realpath -m "$out")/" in
"$(pwd -P)"/*) die "$out is inside the repository: the generated set must not be committed; put it elsewhere" ;;
esac
marker="$out/.complete"
if [ -f "$marker" ] && grep -qx "messages=$n" "$marker" && grep -qx "seed=$seed" "$marker"; then
	echo "$out/maildir"
	exit 0
fi
[ ! -e "$out/maildir" ] || [ -f "$marker" ] || echo "amplify-corpus.sh: $out/maildir is incomplete (an interrupted run): rebuilding it" >&2
[ ! -f "$marker" ] || die "$out holds another set ($(tr '\n' ' ' <"$marker")): remove it or pick another OUTDIR"

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null

mkdir -p "$out"
rm -rf "$out/maildir" "$out"/.build.*
build="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$build"' EXIT
echo "amplify-corpus.sh: writing $n messages (seed $seed) into $out/maildir" >&2
go run ./internal/amplify/cmd/amplify -corpus "$MAILVAULT_CORPUS/maildir" -n "$n" -seed "$seed" \
	-out "$build/maildir" >"$build/complete" || die "amplify failed"
files="$(find "$build/maildir" -path '*/cur/*' -type f | wc -l)"
[ "$files" -eq "$n" ] || die "wrote $files message files, want $n"
mv "$build/maildir" "$out/maildir"
mv "$build/complete" "$marker"
echo "$out/maildir"
