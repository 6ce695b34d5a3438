#!/usr/bin/env bash
# Checks that third_party/go-imap is upstream go-imap v2.0.0-beta.8 plus
# exactly the patch in third_party/go-imap/mailvault.patch (MAILVAULT.md says
# why): every file is upstream's byte for byte, except the patched ones, whose
# differences from upstream are that patch. Upstream comes from the Go module
# proxy, like any dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/emersion/go-imap/v2@v2.0.0-beta.8
up=$(go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$up" ] || { echo "check-go-imap: cannot download $mod" >&2; exit 1; }
ours=third_party/go-imap
# The patched files are those mailvault.patch names (its "+++ b/" lines);
# their differences from upstream, in the patch's order, must be the patch.
mapfile -t patched < <(sed -n 's|^+++ b/||p' "$ours/mailvault.patch")
status=0
got=$(cd "$up" && for f in "${patched[@]}"; do diff -u "$f" "$OLDPWD/$ours/$f" --label "a/$f" --label "b/$f" || true; done)
if [ "$got" != "$(cat "$ours/mailvault.patch")" ]; then
	echo "check-go-imap: ${patched[*]} differ from upstream by more or less than mailvault.patch" >&2
	status=1
fi
while IFS= read -r f; do
	case " MAILVAULT.md mailvault.patch ${patched[*]} " in
	*" $f "*) continue ;;
	esac
	if ! cmp -s "$up/$f" "$ours/$f"; then
		echo "check-go-imap: $f is not upstream's $mod" >&2
		status=1
	fi
done < <(cd "$ours" && find . -type f | sed 's|^\./||' | sort)
[ $status -eq 0 ] && echo "third_party/go-imap is $mod plus mailvault.patch"
exit $status
