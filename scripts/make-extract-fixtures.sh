#!/usr/bin/env bash
# make-extract-fixtures.sh: produces the real documents the document
# extractors are tested against (indexer/extract/testdata/docs), from known
# text, with LibreOffice headless. Not run by CI (LibreOffice is ~400 MB):
# its output is checked in, beside the source text each file was made from
# (*.txt: the words a test expects an extractor to find, word recall >= 95 %).
#
#   scripts/make-extract-fixtures.sh            # regenerate testdata/docs
#   scripts/make-extract-fixtures.sh --debian   # also fetch Debian PDFs into
#                                               # $MAILVAULT_EXTRACT_PDFS (not checked in)
#
# Sources: letter.fodt (flat OpenDocument text: prose, a table, a header and
# a footer, non-ASCII words) -> docx odt rtf doc pdf; sheet.csv (numbers and
# words, UTF-8) -> xlsx ods xls; slides.fodp (three slides with notes) ->
# pptx odp ppt pdf. Run as root for the apt-get line, or install first.
set -euo pipefail
cd "$(dirname "$0")/.."
out=indexer/extract/testdata/docs
mkdir -p "$out"

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi

if ! command -v soffice >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1 || ! command -v qpdf >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		libreoffice-core libreoffice-writer libreoffice-calc libreoffice-impress poppler-utils qpdf
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
HOME_ORIG=$HOME
export HOME="$tmp" # a fresh LibreOffice profile: no dialogs, no stale lock

# The text every writer format is made from. Kept in one place: the .txt
# (what the test expects) and the .fodt (what LibreOffice converts) are
# written from the same lines.
header="Quarterly Report Header Northwind Traders"
footer="Confidential Footer Page Marker"
paras=(
	"Dear Ms. Øvergaard, this letter confirms the shipment of forty crates of porcelain to the warehouse in Zürich on the fourteenth of March."
	"The invoice lists each crate separately; the customs broker, Herr Straße, asked for the weights in kilograms and for the origin of every item."
	"Our café partner in Besançon reported that the glaze on six plates had cracked during transport, so the insurer will inspect the damaged goods next week."
	"Japanese customers asked for the catalogue in their language: 日本語 版 を 送ります, which our translator in Kyoto will prepare before the autumn fair."
	"Payment terms remain thirty days net; a discount of two percent applies when the balance is settled within ten days of the invoice date."
	"Please keep this document with the shipping manifest, since the auditors review both together at the end of each financial quarter."
)
rows=(
	"Item|Quantity|Price"
	"teacups|240|3.75"
	"saucers|180|2.10"
	"platters|36|19.90"
)
{
	echo "$header"
	for p in "${paras[@]}"; do echo "$p"; done
	for r in "${rows[@]}"; do echo "${r//|/ }"; done
	echo "$footer"
} > "$out/letter.txt"

{
	cat <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
<office:automatic-styles><style:page-layout style:name="pm1"><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm"/><style:header-style/><style:footer-style/></style:page-layout></office:automatic-styles>
<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="pm1">
X
	echo "<style:header><text:p>$header</text:p></style:header>"
	echo "<style:footer><text:p>$footer</text:p></style:footer>"
	echo "</style:master-page></office:master-styles><office:body><office:text>"
	for p in "${paras[@]}"; do echo "<text:p>$p</text:p>"; done
	echo "<table:table table:name=\"Prices\"><table:table-column table:number-columns-repeated=\"3\"/>"
	for r in "${rows[@]}"; do
		echo -n "<table:table-row>"
		IFS='|' read -ra cells <<<"$r"
		for c in "${cells[@]}"; do echo -n "<table:table-cell office:value-type=\"string\"><text:p>$c</text:p></table:table-cell>"; done
		echo "</table:table-row>"
	done
	echo "</table:table></office:text></office:body></office:document>"
} > "$tmp/letter.fodt"

# A sheet: words, integers, decimals, a date-like string, non-ASCII.
cat > "$out/sheet.csv" <<'X'
Region,Product,Units,Revenue,Manager
North,Widgets,1200,15600.50,Åsa Lindqvist
South,Gadgets,850,9350.25,François Dupont
East,Sprockets,430,2150.75,Jürgen Weiß
West,Flanges,77,1001.00,山田 太郎
Central,Gaskets,3125,46875.00,Søren Kierkegaard
X
cp "$out/sheet.csv" "$out/sheet.txt"

# Slides: titles, bullet text and speaker notes, in slide order.
slides=(
	"Launch Plan Overview|Market research shows strong demand in Scandinavia|Notes: mention the Oslo pilot customers"
	"Budget and Timeline|Engineering budget approved through December|Notes: the timeline slipped by two weeks"
	"Risks and Mitigation|Supplier délais and currency exposure über Euro|Notes: hedge with forward contracts 日本"
)
{
	for s in "${slides[@]}"; do echo "${s//|/ }"; done
} > "$out/slides.txt"
{
	cat <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:body><office:presentation>
X
	i=0
	for s in "${slides[@]}"; do
		i=$((i + 1))
		IFS='|' read -r title body notes <<<"$s"
		echo "<draw:page draw:name=\"page$i\">"
		echo "<draw:frame svg:x=\"2cm\" svg:y=\"1cm\" svg:width=\"20cm\" svg:height=\"3cm\"><draw:text-box><text:p>$title</text:p></draw:text-box></draw:frame>"
		echo "<draw:frame svg:x=\"2cm\" svg:y=\"5cm\" svg:width=\"20cm\" svg:height=\"8cm\"><draw:text-box><text:p>$body</text:p></draw:text-box></draw:frame>"
		echo "<presentation:notes><draw:frame svg:x=\"2cm\" svg:y=\"14cm\" svg:width=\"17cm\" svg:height=\"10cm\" presentation:class=\"notes\"><draw:text-box><text:p>$notes</text:p></draw:text-box></draw:frame></presentation:notes>"
		echo "</draw:page>"
	done
	echo "</office:presentation></office:body></office:document>"
} > "$tmp/slides.fodp"

convert() { # convert FORMAT SOURCE [INFILTER]
	local fmt=$1 src=$2
	shift 2
	soffice --headless --norestore "$@" --convert-to "$fmt" --outdir "$out" "$src" >/dev/null 2>&1
}
for f in docx odt rtf doc pdf; do convert "$f" "$tmp/letter.fodt"; done
for f in xlsx ods xls; do convert "$f" "$out/sheet.csv" --infilter=CSV:44,34,76,1; done
for f in pptx odp pdf; do convert "$f" "$tmp/slides.fodp"; done
# LibreOffice writes a 450 KB .ppt for three slides (its master's drawing
# layers): checked in gzipped (16 KB); the tests gunzip *.gz fixtures.
soffice --headless --norestore --convert-to ppt --outdir "$tmp" "$tmp/slides.fodp" >/dev/null 2>&1
gzip -9 -n -c "$tmp/slides.ppt" > "$out/slides.ppt.gz"

# Encrypted PDFs (qpdf): with a user password (AES-256, AES-128: nothing to
# read without it) and with only an owner password (RC4-128: readable by
# anyone, so its text must come out).
qpdf --encrypt secret owner 256 -- "$out/letter.pdf" "$out/letter-aes256-user.pdf"
qpdf --allow-weak-crypto --encrypt secret owner 128 --use-aes=y -- "$out/letter.pdf" "$out/letter-aes128-user.pdf"
qpdf --allow-weak-crypto --encrypt "" owner 128 --use-aes=n -- "$out/letter.pdf" "$out/letter-rc4-nouser.pdf"
# AES-256 (V5) with no user password: readable in principle, but the PDF
# library does not do V5: reported encrypted (a known limit, tested).
qpdf --encrypt "" owner 256 -- "$out/letter.pdf" "$out/letter-aes256-nouser.pdf"

# The PDFs' reference text, from poppler (the recall test compares both).
for p in "$out"/letter.pdf "$out"/slides.pdf; do pdftotext -enc UTF-8 "$p" "${p%.pdf}.pdftotext"; done
ls -la "$out"

if [ "${1:-}" = "--debian" ]; then
	# Real PDFs from Debian documentation packages, for the recall test
	# against pdftotext and the benchmark (MAILVAULT_EXTRACT_PDFS=dir go test
	# ./indexer/extract/ -run TestPDFAgainstPdftotext -bench BenchmarkExtract).
	# Not checked in: they are big. The packages: pdfTeX (bash-doc's bashref,
	# libtasn1-doc, shared-mime-info), Ghostscript (bash-doc's bash.pdf),
	# Apache FOP (xorg-docs, gzipped).
	dest=${MAILVAULT_EXTRACT_PDFS:-$HOME_ORIG/.cache/mailvault/pdfs}
	mkdir -p "$dest"
	(
		cd "$tmp"
		for pkg in ${MAILVAULT_EXTRACT_PDF_PACKAGES:-bash-doc xorg-docs libtasn1-doc shared-mime-info}; do
			apt-get download "$pkg" >/dev/null && dpkg -x "$pkg"_*.deb "x-$pkg" || echo "skipped $pkg" >&2
		done
		find . -name '*.pdf.gz' -size -1024k -exec gunzip -f {} \;
		find . -name '*.pdf' -size +1k -size -3072k -exec cp {} "$dest" \;
	)
	ls -la "$dest"
fi
