#!/usr/bin/env bash
# Creates .venv and installs the project into it. torch 2.13.0 goes in first: an open-ended torch
# requirement installed before it would pull the CUDA build (gigabytes) from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Graphviz binaries (`dot`) draw circuits (`editing-service circuit --svg`); installed when we may.
if ! command -v dot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz
  else
    echo "note: install Graphviz (apt-get install graphviz) for circuit drawings" >&2
  fi
fi
EXTRAS=${EXTRAS:-dev}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
.venv/bin/python -c "import torch, editing_service; print('editing-service ready, torch', torch.__version__)"
