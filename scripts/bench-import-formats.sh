#!/usr/bin/env bash
# Import formats benchmark (issue 16): `mailvault import` of the SpamAssassin
# corpus as a Maildir++ tree, as directories of loose .eml files and as
# directories of Apple Mail .emlx files (the same messages, byte for byte,
# in the same mailboxes), in the same run, alternating, RUNS times each.
# Prints a Markdown table for docs/benchmarks.md ("Imports (issue 16)").
#
#   ./scripts/bench-import-formats.sh            # RUNS=3
#
# Needs /usr/bin/time (package time; installed when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }

export MAILVAULT_CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
./scripts/fetch-corpus.sh >/dev/null
maildir="$MAILVAULT_CORPUS/maildir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/mailvault" ./cmd/mailvault

# The same messages as loose files: the Maildir++ root's mail in eml/, each
# .Folder's in eml/Folder/ (the same mailbox names), numbered in Maildir order.
python3 - "$maildir" "$work" <<'PY'
import os, sys
src, work = sys.argv[1], sys.argv[2]
def folders():
    yield "", src
    for n in sorted(os.listdir(src)):
        p = os.path.join(src, n)
        if n.startswith(".") and os.path.isdir(os.path.join(p, "cur")):
            yield n[1:].replace(".", "/"), p
for name, d in folders():
    files = sorted(os.path.join(d, s, f) for s in ("cur", "new") if os.path.isdir(os.path.join(d, s)) for f in os.listdir(os.path.join(d, s)))
    for kind in ("eml", "emlx"):
        out = os.path.join(work, kind, name)
        os.makedirs(out, exist_ok=True)
        for i, f in enumerate(files, 1):
            raw = open(f, "rb").read()
            with open(os.path.join(out, "%d.%s" % (i, kind)), "wb") as w:
                if kind == "eml":
                    w.write(raw)
                else:
                    w.write(b"%d\n" % len(raw) + raw + b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n\t<key>flags</key>\n\t<integer>1</integer>\n</dict>\n</plist>\n')
PY

msgs=$(find "$maildir" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(go version | cut -d' ' -f3); commit $(git rev-parse --short HEAD); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "corpus: $msgs messages"
echo
# CPU seconds (user + system, the import and its children) are the figure
# to compare on a shared machine: wall time there mostly measures the others.
echo "| run | source | seconds (wall) | msg/s (wall) | CPU seconds | msg per CPU second | stored | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$runs"); do
	for src in maildir eml emlx; do
		path="$maildir"
		[ "$src" = maildir ] || path="$work/$src"
		rm -rf "$work/data"
		sync
		/usr/bin/time -f '%e %U %S %M' -o "$work/t" "$work/mailvault" import --json --data "$work/data" --account sa "$path" >"$work/sum" 2>/dev/null
		read -r secs usr sys rss <"$work/t"
		stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stored"])' "$work/sum")
		awk -v i="$i" -v src="$src" -v s="$secs" -v u="$usr" -v y="$sys" -v r="$rss" -v n="$msgs" -v st="$stored" \
			'BEGIN {printf "| %d | %s | %.2f | %.0f | %.2f | %.0f | %d | %.0f |\n", i, src, s, n/s, u+y, n/(u+y), st, r/1024}'
	done
done
