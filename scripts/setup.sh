#!/usr/bin/env bash
# Creates .venv and installs the project into it. torch 2.13.0 goes in first: an open-ended torch
# requirement installed before it would pull the CUDA build (gigabytes) from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
.venv/bin/python -c "import torch, editing_service; print('editing-service ready, torch', torch.__version__)"
