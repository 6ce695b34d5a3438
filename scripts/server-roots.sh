#!/usr/bin/env bash
# server-roots.sh — a root file system per IMAP server the harvester is tested
# against besides Dovecot: Cyrus IMAP and Courier IMAP. Their Debian packages
# declare Conflicts: imap-server (with dovecot-imapd and each other), so each
# lives in a `debootstrap --variant=minbase bookworm` root of its own, and the
# test harnesses (harvest/cyrustest, harvest/couriertest) chroot into it.
#
# Layout, in ${MAILVAULT_SERVER_ROOTS:-/var/cache/mailvault/roots} (outside the repo):
#   .base/        the bare minbase root both are copied from (kept: a rebuild
#                 of one server root then costs a package install, not a
#                 debootstrap)
#   cyrus/        + cyrus-imapd cyrus-admin sasl2-bin
#   courier/      + courier-imap courier-authlib-userdb
#   <root>/.mailvault-root   marker, written last: package versions. A root
#                 without it is half made (a killed run) and is rebuilt from
#                 scratch; with it a re-run does nothing.
# Each root is built in <name>.build and renamed into place, so a root that
# exists is complete. Concurrent runs wait on a flock. No service is started:
# /usr/sbin/policy-rc.d in each root refuses every start (the packages'
# postinst scripts would start cyrus, courier and exim), and the harnesses
# start private instances on their own ports.
#
# Mirror: the first URIs of apt's own deb822 sources (the Debian archive this
# machine already uses), else http://deb.debian.org/debian.
# Needs root (debootstrap, chroot, mount). Installs debootstrap with apt when
# missing. Usage: sudo scripts/server-roots.sh [cyrus|courier ...]
set -euo pipefail

readonly ROOTS="${MAILVAULT_SERVER_ROOTS:-/var/cache/mailvault/roots}"
readonly SUITE=bookworm
readonly MARKER=.mailvault-root
# Bump when what a root holds changes: an old root is then rebuilt.
readonly LAYOUT=1

declare -A PACKAGES=(
	[cyrus]="cyrus-imapd cyrus-admin sasl2-bin"
	[courier]="courier-imap courier-authlib-userdb"
)

if [ "$(id -u)" -ne 0 ]; then
	echo "server-roots.sh: needs root (debootstrap, chroot)" >&2
	exit 1
fi

mirror() {
	local url
	url=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	if [ -z "$url" ]; then
		url=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	fi
	case "$url" in
	*security*|"") url=http://deb.debian.org/debian ;;
	esac
	echo "$url"
}

complete() { [ -f "$1/$MARKER" ] && grep -qx "layout $LAYOUT" "$1/$MARKER"; }

# umount_under unmounts everything mounted at or below $1, deepest first.
umount_under() {
	local m
	for m in $(awk -v p="$1" '$2 == p || index($2, p "/") == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}

build_base() {
	local dir="$ROOTS/.base"
	complete "$dir" && return 0
	local tmp="$ROOTS/.base.build"
	umount_under "$tmp"
	rm -rf "$tmp" "$dir"
	if ! command -v debootstrap >/dev/null 2>&1; then
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
	fi
	local url
	url=$(mirror)
	echo "server-roots.sh: debootstrap $SUITE from $url" >&2
	debootstrap --variant=minbase "$SUITE" "$tmp" "$url" >"$ROOTS/.base.log" 2>&1 ||
		{ tail -20 "$ROOTS/.base.log" >&2; exit 1; }
	# No service starts inside a root, whatever a postinst asks for.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 755 "$tmp/usr/sbin/policy-rc.d"
	# Smaller and faster installs: no documentation, no recommends.
	printf 'path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/locale/*\n' \
		>"$tmp/etc/dpkg/dpkg.cfg.d/01-mailvault-nodoc"
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$tmp/etc/apt/apt.conf.d/01-mailvault"
	printf 'layout %s\nsuite %s\nmirror %s\n' "$LAYOUT" "$SUITE" "$url" >"$tmp/$MARKER"
	mv "$tmp" "$dir"
}

build_server() {
	local name="$1"
	local dir="$ROOTS/$name"
	complete "$dir" && return 0
	local tmp="$ROOTS/$name.build"
	umount_under "$tmp"
	umount_under "$dir"
	rm -rf "$tmp" "$dir"
	cp -a "$ROOTS/.base" "$tmp"
	rm -f "$tmp/$MARKER"
	mount --bind /proc "$tmp/proc"
	trap 'umount_under "'"$tmp"'"' EXIT
	echo "server-roots.sh: installing ${PACKAGES[$name]} into $dir" >&2
	# shellcheck disable=SC2086
	if ! chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c "apt-get update -qq && apt-get install -y -qq ${PACKAGES[$name]} && apt-get clean" \
		>"$ROOTS/$name.log" 2>&1; then
		tail -30 "$ROOTS/$name.log" >&2
		exit 1
	fi
	umount_under "$tmp"
	trap - EXIT
	{
		printf 'layout %s\nsuite %s\n' "$LAYOUT" "$SUITE"
		# shellcheck disable=SC2086
		chroot "$tmp" dpkg-query -W ${PACKAGES[$name]}
	} >"$tmp/$MARKER.new"
	mv "$tmp/$MARKER.new" "$tmp/$MARKER"
	mv "$tmp" "$dir"
}

mkdir -p "$ROOTS"
exec 9>"$ROOTS/.lock"
flock 9

servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(cyrus courier)
for s in "${servers[@]}"; do
	[ -n "${PACKAGES[$s]:-}" ] || { echo "server-roots.sh: unknown server $s (cyrus, courier)" >&2; exit 2; }
done
build_base
for s in "${servers[@]}"; do
	build_server "$s"
	echo "$ROOTS/$s"
done
