#!/usr/bin/env bash
# The quick start, after scripts/setup.sh: a real model from the Hugging Face hub and a real sample
# of the reference's bird dataset, embedded under DIOR's two prompts and evaluated.
#
#   bash scripts/quickstart.sh
#
# It downloads Qwen2.5-VL-3B-Instruct (GGUF, Q4_K_M text + its projector, about 3 GB, into the
# Hugging Face cache) and CUB-200-2011 (1.1 GB; classes 101-200 are kept in quickstart/datasets),
# embeds 5 images of each of 8 species with no condition and with "bird species", and evaluates
# both. Everything it makes is under quickstart/ (DIOR_QUICKSTART_DIR); run it again and it
# resumes where it stopped. Other knobs, as environment variables:
#   DIOR_QUICKSTART_MODEL   the hub repository (default ggml-org/Qwen2.5-VL-3B-Instruct-GGUF)
#   DIOR_QUICKSTART_SPECIES, DIOR_QUICKSTART_PER_SPECIES   the sample (default 8 x 5)
#   DIOR_QUICKSTART_CUB_URL, DIOR_QUICKSTART_CUB_SHA256    a mirror of CUB_200_2011.tgz
#   HF_ENDPOINT, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE    as for every Hugging Face tool
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dior=${DIOR_BIN:-$here/build/bin/dior}
out=${DIOR_QUICKSTART_DIR:-$here/quickstart}
model=${DIOR_QUICKSTART_MODEL:-ggml-org/Qwen2.5-VL-3B-Instruct-GGUF}
species=${DIOR_QUICKSTART_SPECIES:-8}
per_species=${DIOR_QUICKSTART_PER_SPECIES:-5}

if [ ! -x "$dior" ]; then
  echo "quickstart: $dior is not built yet: run bash scripts/setup.sh first" >&2
  exit 1
fi
mkdir -p "$out"

mirror=()
[ -n "${DIOR_QUICKSTART_CUB_URL:-}" ] && mirror+=(--url "$DIOR_QUICKSTART_CUB_URL")
[ -n "${DIOR_QUICKSTART_CUB_SHA256:-}" ] && mirror+=(--sha256 "$DIOR_QUICKSTART_CUB_SHA256")
"$dior" datasets download cub200 --datasets-dir "$out/datasets" "${mirror[@]}"

# The sample: the first images of the first species, in name order (a species is the file name
# without its last two "_" parts, as the evaluation reads it).
declare -A taken=()
n_species=0
: > "$out/sample.txt"
while IFS= read -r name; do
  kind=${name%_*_*}
  if [ -z "${taken[$kind]+x}" ]; then
    [ "$n_species" -ge "$species" ] && continue
    taken[$kind]=0
    n_species=$((n_species + 1))
  fi
  if [ "${taken[$kind]}" -lt "$per_species" ]; then
    taken[$kind]=$((taken[$kind] + 1))
    printf '%s\n' "$out/datasets/cub200/$name" >> "$out/sample.txt"
  fi
done < <(ls "$out/datasets/cub200" | LC_ALL=C sort)

"$dior" embed -hf "$model" --list "$out/sample.txt" --name cub200 --unconditional -c "bird species" \
  -o "$out/quickstart.db"
"$dior" eval --db "$out/quickstart.db" -o "$out/eval"
"$dior" report --db "$out/quickstart.db" --eval "$out/eval" -o "$out/report.html"
echo "quickstart: vectors in $out/quickstart.db, scores in $out/eval/summary.csv, pictures in $out/report.html"
