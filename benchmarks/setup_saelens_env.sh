#!/usr/bin/env bash
# Creates .venv-saelens: a separate environment with SAELens, used only by benchmarks/sae_training.py
# to time SAELens's SAETrainer against ours. It is separate because sae-lens pulls transformer-lens
# and wandb, whose pins conflict with BentoML's in .venv.
# torch 2.13.0 goes in first: sae-lens's open-ended torch requirement installed before it would pull
# the CUDA build (gigabytes) from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-saelens
SAE_LENS_SPEC=${SAE_LENS_SPEC:-sae-lens>=6,<7}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0
# Keep torch pinned while sae-lens and its dependencies resolve.
echo "torch==2.13.0" > "$VENV/constraints.txt"
"$VENV/bin/python" -m pip install -q -c "$VENV/constraints.txt" "$SAE_LENS_SPEC"
"$VENV/bin/python" -c "import torch, sae_lens; print('sae-lens', sae_lens.__version__, 'torch', torch.__version__)"
