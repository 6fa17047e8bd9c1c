"""Starvation under one large predict request: batch-1 latency of small clients while one client sends
`--big-texts` texts of `--big-kb` KB each.

Starts the service from this checkout (and, with `--before DIR`, from another checkout of the project,
for example the commit before the fix unpacked with `git archive <commit> | tar -x -C DIR`), makes a
project of the embedded MiniLM classifier on the tests' tiny bios table with the tests' tiny settings
(discovery and an edit of one feature: minutes, not the hour of the full pipeline), then runs
`--clients` closed-loop clients that each send one real biography (the shipped spec's evaluation
split) at a time, and once they run, one client sends the large request. Batch-1 latencies are those
of the requests sent while the large request was in flight. Writes the "## Predict fairness" section
of BENCHMARKS.md.

    .venv/bin/python benchmarks/predict_fairness.py [--clients 20] [--big-texts 512] [--big-kb 58] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import TINY_SETTINGS, make_world, spec_for  # noqa: E402
from local_server import LocalServer  # noqa: E402
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

from editing_service.client import EditingClient  # noqa: E402
from editing_service.data import load_role, load_spec  # noqa: E402

TOKEN = "fairness-bench-token"
HEADING = "## Predict fairness"


def bios() -> list[str]:
    return list(load_role(load_spec("biasbios_surgeon_nurse"), "evaluate").texts)


def big_texts(pool: list[str], n: int, kb: int) -> list[str]:
    """`n` texts of `kb` KB, each made of biographies one after another."""
    joined = " ".join(pool)
    size = kb * 1000
    return [(joined[i * 997 % len(joined):] + " " + joined)[:size] for i in range(n)]


def make_edit(url: str, world: Path) -> tuple[str, str]:
    with EditingClient(url, token=TOKEN, timeout=600) as client:
        project = client.create_project(name="fairness", model=None, dataset={"inline": spec_for(world)},
                                         settings=TINY_SETTINGS)
        client.wait(client.discover(project["id"])["id"], timeout=3600, poll=2)
        feature = client.features(project["id"], limit=1)["items"][0]
        created = client.create_edit(project["id"], reviewer="bench",
                                     features=[{"site": feature["site"], "feature": feature["feature"]}])
        client.wait(created["job"]["id"], timeout=3600, poll=2)
        return project["id"], created["edit"]["id"]


def run_load(url: str, ids: tuple[str, str], args: argparse.Namespace, pool: list[str]) -> dict[str, float]:
    predict = f"{url}/v1/projects/{ids[0]}/edits/{ids[1]}/predict"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    window: dict[str, float] = {}
    records: list[tuple[float, float]] = []  # (sent at, latency)
    stop = threading.Event()
    lock = threading.Lock()

    def small(client_id: int) -> None:
        with httpx.Client(timeout=600) as http:
            i = client_id
            while not stop.is_set():
                sent = time.perf_counter()
                answer = http.post(predict, headers=headers, json={"texts": [pool[i % len(pool)]]})
                answer.raise_for_status()
                with lock:
                    records.append((sent, time.perf_counter() - sent))
                i += args.clients

    clients = [threading.Thread(target=small, args=(c,), daemon=True) for c in range(args.clients)]
    for thread in clients:
        thread.start()
    time.sleep(args.warmup_s)
    texts = big_texts(pool, args.big_texts, args.big_kb)
    big: dict[str, object] = {}

    def send_big() -> None:
        try:
            big["status"] = httpx.post(predict, headers=headers, json={"texts": texts}, timeout=3600).status_code
        except httpx.HTTPError as err:
            big["status"] = type(err).__name__
        big["s"] = time.perf_counter() - window["start"]

    sender = threading.Thread(target=send_big, daemon=True)
    window["start"] = time.perf_counter()
    sender.start()
    sender.join(args.window_s)  # measure while the large request runs, at most window_s
    window["end"] = time.perf_counter()
    stop.set()
    for thread in clients:
        thread.join(600)
    during = np.array([lat for sent, lat in records if window["start"] <= sent <= window["end"]])
    before = np.array([lat for sent, lat in records if sent < window["start"]])
    finished = "s" in big
    return {
        "big_s": big["s"] if finished else float("nan"),
        "big_status": big.get("status", f"still running after {args.window_s:g} s"), "n_during": len(during),
        "p50": float(np.percentile(during, 50)) if len(during) else float("nan"),
        "p99": float(np.percentile(during, 99)) if len(during) else float("nan"),
        "max": float(during.max()) if len(during) else float("nan"),
        "idle_p99": float(np.percentile(before, 99)) if len(before) else float("nan"),
    }


def measure(code: Path, label: str, args: argparse.Namespace, work: Path, pool: list[str]) -> dict[str, object]:
    world = make_world(work / ("before" if code != ROOT else "this"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDITING_SERVICE_")} | {
        "PYTHONPATH": str(code), "BENTOML_HOME": str(world / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
        "EDITING_SERVICE_HOME": str(world / "home"), "EDITING_SERVICE_API_TOKENS": f"bench={TOKEN}",
        "EDITING_SERVICE_MODEL_ROOTS": str(world / "models"), "EDITING_SERVICE_DATA_ROOTS": str(world / "data"),
        "EDITING_SERVICE_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    } | dict(item.split("=", 1) for item in args.server_env)
    server = LocalServer(env, log_path=world / "server.log", cwd=code, startup_s=300).start()
    try:
        ids = make_edit(server.url, world)
        row = {"label": label, **run_load(server.url, ids, args, pool)}
    finally:
        server.stop()
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--big-texts", type=int, default=512)
    parser.add_argument("--big-kb", type=int, default=58)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--window-s", type=float, default=3600.0,
                        help="stop measuring after this long even if the large request still runs")
    parser.add_argument("--before", type=Path, help="a checkout of the project before the fix")
    parser.add_argument("--label", default="this checkout", help="the row's name for this checkout's server")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the servers, e.g. EDITING_SERVICE_PREDICT_MAX_TOKENS=2048 (repeatable)")
    parser.add_argument("--write", type=Path, default=ROOT / "BENCHMARKS.md", help="where the section goes")
    args = parser.parse_args()
    pool = bios()
    with tempfile.TemporaryDirectory(prefix="predict-fairness-") as tmp:
        rows = []
        if args.before:
            rows.append(measure(args.before.resolve(), f"the checkout {args.before}", args, Path(tmp), pool))
        rows.append(measure(ROOT, args.label, args, Path(tmp), pool))
    load = os.getloadavg()[0]
    command = (f"nice -n 5 .venv/bin/python benchmarks/predict_fairness.py --clients {args.clients} "
               f"--big-texts {args.big_texts} --big-kb {args.big_kb} --warmup-s {args.warmup_s:g} "
               f"--window-s {args.window_s:g}" + "".join(f" --server-env {e}" for e in args.server_env)
               + (" --before <checkout of the commit before the fix>" if args.before else ""))
    table = "\n".join(
        f"| {r['label']} | {r['big_s']:.1f} ({r['big_status']}) | {r['n_during']} | {r['p50']:.2f} | "
        f"{r['p99']:.2f} | {r['max']:.2f} | {r['idle_p99']:.2f} |" for r in rows)
    section = f"""{HEADING}

`{command}` on {cpu_name()} ({os.cpu_count()} cores; load average {load:.1f} at the end). The embedded MiniLM classifier (max_length 256), edited on the
tests' tiny bios table with the tests' tiny settings; {args.clients} closed-loop clients each send one
real biography per request while, after {args.warmup_s:g} s, one client sends {args.big_texts} texts of
{args.big_kb} KB. Latencies in seconds, of the batch-1 requests sent while the large one was in flight
(at most {args.window_s:g} s of it).

| server | large request s (status) | batch-1 requests during it | p50 | p99 | max | p99 before it |
|---|---:|---:|---:|---:|---:|---:|
{table}

Target: batch-1 p99 under 2 s during the large request.
"""
    write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
