#!/usr/bin/env bash
# Copies what models/gpu_job.sh reads from ../shared/data into .gpu/data (git-ignored), small
# enough to travel with the working tree to a lent GPU machine (the tree is about 18 MiB, the
# limit 64): BSDS500 train/ and val/ (CBSD432's photos among them, all of CBSD68), the split
# lists (cbsd432.txt cut to the photos copied: 232 of 432; the trainers record its hash), and
# video/ (DAVIS bus, bikes, carphone).  Usage: bash models/gpu_data.sh [DATA]
set -eu
SRC=${1:-../shared/data}
DST=.gpu/data
[ -f "$SRC/splits/cbsd432.txt" ] || { echo "error: no data under $SRC (expected splits/cbsd432.txt)" >&2; exit 2; }
rm -rf "$DST"
mkdir -p "$DST/bsds500" "$DST/splits"
cp -r "$SRC/bsds500/train" "$SRC/bsds500/val" "$DST/bsds500/"
cp -r "$SRC/video" "$DST/"
cp "$SRC/splits/cbsd68.txt" "$DST/splits/"
for i in $(cat "$SRC/splits/cbsd432.txt"); do
  if [ -f "$DST/bsds500/train/$i.jpg" ] || [ -f "$DST/bsds500/val/$i.jpg" ]; then echo "$i"; fi
done > "$DST/splits/cbsd432.txt"
echo "$(wc -l < "$DST/splits/cbsd432.txt") training photos, $(du -sh "$DST" | cut -f1) in $DST"
