#!/usr/bin/env bash
# Makes the container fixtures from src/ with the real tools (Info-ZIP zip,
# GNU tar, gzip), so the extractors are tested on what those tools write,
# not on what archive/zip writes. winmail.dat is written by the test's TNEF
# writer (go test ./indexer/extract/ -run TestTNEFFixture -update) and
# checked against Debian's tnef. Run from this directory; the outputs are
# checked in.
set -euo pipefail
cd "$(dirname "$0")"
rm -f sample.zip encrypted.zip stream.zip sample.tar sample.tar.gz report.xml.gz
mkdir -p src/archive
(cd src/archive && rm -f inner.zip && zip -q -X inner.zip ../notes.xml)
cp ../docs/letter.docx src/letter.docx
(cd src && zip -q -X ../sample.zip report.xml page.html meeting.ics card.vcf letter.docx archive/inner.zip)
(cd src && zip -q -X -P secret ../encrypted.zip report.xml page.html)
# zip writing to a pipe cannot seek back: sizes follow the data (data descriptors).
(cd src && zip -q -X - notes.xml | cat > ../stream.zip)
tar --format=ustar -C src -cf sample.tar report.xml page.html meeting.ics card.vcf --owner=0 --group=0 --mtime=2024-01-01
gzip -9 -n -c sample.tar > sample.tar.gz
gzip -9 -c src/report.xml > report.xml.gz # keeps the name in the header
rm src/letter.docx
