#!/usr/bin/env bash
# make-ocr-fixtures.sh: produces the images and the scanned PDF the optional
# OCR extra is tested against (indexer/extract/testdata/ocr), from known
# text. Not run by CI: its output is checked in beside the source text
# (*.txt: the words a test expects tesseract to find, word recall >= 90 %).
#
#   scripts/make-ocr-fixtures.sh        # regenerate testdata/ocr
#
# How: a small PDF with the text set in Helvetica is written by hand (no
# LibreOffice needed), poppler's pdftoppm rasterizes it at 200 dpi, grey, to
# PNG, JPEG and TIFF (LZW); img2pdf wraps two rasterized pages into a
# PDF with no text layer at all (a "scan"); cwebp makes a lossless WebP of
# the PNG. Needs poppler-utils, img2pdf, webp and python3 (run as root for
# the apt-get line, or install them first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=indexer/extract/testdata/ocr

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi

if ! command -v pdftoppm >/dev/null 2>&1 || ! command -v img2pdf >/dev/null 2>&1 || ! command -v cwebp >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends poppler-utils img2pdf webp
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The texts. Each line is one line of the image; the .txt is what the test
# expects (lines joined).
cat >"$out/notice.txt" <<'TXT'
Invoice number 4471 from Northwind Traders
Payment is due within thirty days of delivery
Please quote the order reference on every letter
The warehouse in Rotterdam ships on Tuesday morning
TXT
cat >"$out/scan-page1.txt" <<'TXT'
Scanned contract between Contoso and Fabrikam
The supplier delivers twelve pallets of copper wire
Prices are fixed until the end of September
TXT
cat >"$out/scan-page2.txt" <<'TXT'
Second page of the scanned contract
Disputes are settled by the court in Amsterdam
Signed by both parties on the first of March
TXT

# pdf FILE.txt... > out.pdf: one page per text file, 6 x 2.5 inches,
# Helvetica 16 pt, the xref table computed.
mkpdf() {
	python3 - "$@" <<'PY'
import sys
pages = [open(f).read().splitlines() for f in sys.argv[1:]]
objs = []
n = len(pages)
kids = " ".join(f"{3 + 2*i} 0 R" for i in range(n))
objs.append("<< /Type /Catalog /Pages 2 0 R >>")
objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>")
font = 3 + 2*n
for i, lines in enumerate(pages):
    ops = ["BT", "/F1 16 Tf", "20 TL", "24 150 Td"]
    for l in lines:
        l = l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({l}) Tj T*")
    ops.append("ET")
    s = "\n".join(ops)
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 432 180] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2*i} 0 R >>")
    objs.append(f"<< /Length {len(s)} >>\nstream\n{s}\nendstream")
objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
out = "%PDF-1.4\n"
offs = []
for i, o in enumerate(objs):
    offs.append(len(out))
    out += f"{i+1} 0 obj\n{o}\nendobj\n"
x = len(out)
out += f"xref\n0 {len(objs)+1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offs)
out += f"trailer\n<< /Size {len(objs)+1} /Root 1 0 R >>\nstartxref\n{x}\n%%EOF\n"
sys.stdout.write(out)
PY
}

mkpdf "$out/notice.txt" >"$tmp/notice.pdf"
pdftoppm -r 200 -gray -png -singlefile "$tmp/notice.pdf" "$out/notice"
pdftoppm -r 200 -gray -jpeg -jpegopt quality=80 -singlefile "$tmp/notice.pdf" "$out/notice"
mv "$out/notice.jpg" "$out/notice.jpeg"
pdftoppm -r 200 -gray -tiff -tiffcompression lzw -singlefile "$tmp/notice.pdf" "$out/notice"
mv "$out/notice.tif" "$out/notice.tiff"
cwebp -quiet -lossless -metadata none "$out/notice.png" -o "$out/notice.webp"

mkpdf "$out/scan-page1.txt" "$out/scan-page2.txt" >"$tmp/scan.pdf"
pdftoppm -r 200 -gray -png "$tmp/scan.pdf" "$tmp/page"
# --nodate: no CreationDate; the trailer's /ID still differs from run to
# run (img2pdf's PDF writer makes it random), the rest is the same.
img2pdf --nodate -o "$out/scan.pdf" "$tmp"/page-*.png
cat "$out/scan-page1.txt" "$out/scan-page2.txt" >"$out/scan.txt"
rm "$out/scan-page1.txt" "$out/scan-page2.txt"
ls -l "$out"
