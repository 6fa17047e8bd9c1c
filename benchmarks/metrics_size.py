"""How /metrics grows with requests to paths no route serves: series count, bytes and scrape time.

Starts the service (the tests' tiny world, no job worker) from this checkout and, with `--before DIR`,
also from another checkout of the project (for example the commit before the fix, unpacked with
`git archive <commit> | tar -x -C DIR`), sends `--requests` requests to invented paths (half without a
token, half with one), and scrapes /metrics before and after. Writes the "## /metrics size" section of
BENCHMARKS.md.

    .venv/bin/python benchmarks/metrics_size.py [--requests 3000] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import make_world  # noqa: E402
from local_server import LocalServer  # noqa: E402
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

TOKEN = "metrics-bench-token"
HEADING = "## /metrics size"


def scrape(url: str, rounds: int = 3) -> tuple[int, int, float]:
    """(series, bytes, median seconds) of GET /metrics."""
    times, text = [], ""
    for _ in range(rounds):
        started = time.perf_counter()
        answer = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
        text = answer.text
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return series, len(text.encode()), statistics.median(times)


def flood(url: str, n: int) -> None:
    """`n` requests to invented paths, half without a token."""
    def one(i: int) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"} if i % 2 else {}
        path = f"/v1/no/such/route/{i}" if i % 4 < 2 else f"/invented-{i}"
        httpx.get(url + path, headers=headers, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n)))


def measure(code: Path, label: str, n: int, work: Path) -> dict[str, object]:
    world = make_world(work / label)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDITING_SERVICE_")} | {
        "PYTHONPATH": str(code), "BENTOML_HOME": str(world / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
        "EDITING_SERVICE_HOME": str(world / "home"), "EDITING_SERVICE_API_TOKENS": f"bench={TOKEN}",
        "EDITING_SERVICE_MODEL_ROOTS": str(world / "models"), "EDITING_SERVICE_DATA_ROOTS": str(world / "data"),
        "EDITING_SERVICE_WORKER": "0", "EDITING_SERVICE_DEVICE": "cpu",
    }
    server = LocalServer(env, log_path=world / "server.log", cwd=code).start()
    try:
        first = scrape(server.url)
        started = time.perf_counter()
        flood(server.url, n)
        flood_s = time.perf_counter() - started
        after = scrape(server.url)
    finally:
        server.stop()
    row = {"label": label, "series_before": first[0], "series_after": after[0], "bytes_after": after[1],
           "scrape_s_before": first[2], "scrape_s_after": after[2], "flood_s": flood_s}
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--before", type=Path, help="a checkout of the project before the fix")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metrics-size-") as tmp:
        rows = []
        if args.before:
            rows.append(measure(args.before.resolve(), "before (raw URL path labels)", args.requests, Path(tmp)))
        rows.append(measure(ROOT, "after (route templates)", args.requests, Path(tmp)))
    command = "nice -n 5 .venv/bin/python benchmarks/metrics_size.py --requests {n}{before}".format(
        n=args.requests, before=" --before <checkout of the commit before the fix>" if args.before else "")
    table = "\n".join(
        f"| {r['label']} | {r['series_before']} | {r['series_after']} | {r['bytes_after']:,} | "
        f"{r['scrape_s_before'] * 1000:.0f} | {r['scrape_s_after'] * 1000:.0f} |" for r in rows)
    section = f"""{HEADING}

`{command}` on {cpu_name()} ({os.cpu_count()} cores, shared with other jobs while measured). The
service (tiny world, no job worker) gets {args.requests:,} GET requests to paths no route serves (half
without a token, four at a time), and /metrics is scraped before and after (median of 3 scrapes).

| server | series at start | series after | bytes after | scrape ms at start | scrape ms after |
|---|---:|---:|---:|---:|---:|
{table}

Series are the non-comment lines of the exposition. Before the fix every invented path added its own
request counter, duration histogram and in-progress gauge; after it they share the route label
`unmatched`, so the size no longer depends on what clients send (tests/api/test_metrics.py checks it).
"""
    write_section(ROOT / "BENCHMARKS.md", HEADING, section)


if __name__ == "__main__":
    main()
