"""Fuzz the running service with schemathesis on a larger budget than the suite's, and write the counts.

Starts the service (a `bentoml serve` process on the tests' tiny world, SQLite, database tokens on),
reads its /docs.json, and runs tests/fuzzing.py's driver twice: with an admin token and with none.
Each operation gets --examples valid requests and, where a request can break its schema, as many
invalid ones (seeded; no time limit). Writes the `## Fuzzing` section of BENCHMARKS.md: requests, 5xx,
schema violations, and answers other than 401 without a token, per run.

    PYTHONPATH=. .venv/bin/python benchmarks/fuzz.py --examples 50 --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from api_world import make_world  # noqa: E402
from fuzzing import FuzzCounts, fuzz, openapi_document  # noqa: E402
from http_server import ServerProcess  # noqa: E402
from machine import cpu_name  # noqa: E402
from markdown_sections import write_section  # noqa: E402

HEADING = "## Fuzzing (schemathesis)"
ADMIN = "fuzz-admin"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=50, help="generated requests per operation and mode")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--write", type=Path, default=None, help="write the section to this file (BENCHMARKS.md)")
    return p.parse_args(argv)


def run(examples: int, seed: int) -> tuple[dict[str, FuzzCounts], dict[str, float], int]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        root = make_world(Path(scratch))
        server = ServerProcess(root, env={"EDITING_SERVICE_API_TOKENS": f"root={ADMIN}",
                                          "EDITING_SERVICE_DATABASE_TOKENS": "1"}).start()
        try:
            document = openapi_document(server.url, ADMIN)
            counts, seconds = {}, {}
            for name, token in (("admin token", ADMIN), ("no token", None)):
                started = time.perf_counter()
                counts[name] = fuzz(server.url, document, token=token, examples=examples, seed=seed)
                seconds[name] = time.perf_counter() - started
                print(f"{name}: {counts[name]}", flush=True)
            operations = sum(len(item) for item in document["paths"].values())
        finally:
            server.stop()
    return counts, seconds, operations


def section(counts: dict[str, FuzzCounts], seconds: dict[str, float], operations: int, args: argparse.Namespace) -> str:
    rows = "\n".join(
        f"| {name} | {c.requests:,} | {c.server_errors} | {c.schema_violations} | "
        f"{c.not_refused if name == 'no token' else '-'} | {c.refused_by_parser} | {seconds[name]:.0f} |"
        for name, c in counts.items())
    problems = [e for c in counts.values() for e in c.examples]
    verdict = "**0 5xx, 0 schema violations, every protected route refused without a token**" if all(
        c.clean for c in counts.values()) else "**problems found** (below)"
    return f"""{HEADING}

Schemathesis {version('schemathesis')} against the running service's own /docs.json ({operations} operations),
{args.examples} generated requests per operation of valid data and as many of invalid data (for operations
where a request can break the schema), seed {args.seed}, no time limit: {verdict}.

| run | requests | 5xx | schema violations | not 401 without a token | head refused by the HTTP parser | seconds |
|---|---:|---:|---:|---:|---:|---:|
{rows}

- Schema violations: an undocumented status code, content type or header, or a body that does not match
  its documented schema (schemathesis's conformance checks). Requests go to a `bentoml serve` process
  on the tests' tiny world (SQLite, database tokens on); without a token, every route but
  /livez, /readyz and /healthz must answer 401.
- Head refused by the HTTP parser: invalid requests whose head (URL and headers) is over uvicorn's
  16 KiB limit, answered 400 in plain text by its h11 parser when the head arrives in pieces, before the
  service sees them. No valid request is that long (tests/api/test_fuzz.py checks every operation's
  longest documented URL).
- Machine: {cpu_name()}, client and server on the same machine (the counts, not the seconds, are the result).
{"".join(f"- {p}" + chr(10) for p in problems)}
Command: `PYTHONPATH=. .venv/bin/python benchmarks/fuzz.py --examples {args.examples} --write BENCHMARKS.md`
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts, seconds, operations = run(args.examples, args.seed)
    text = section(counts, seconds, operations, args)
    print(text)
    if args.write is not None:
        write_section(args.write, HEADING, text)
    return 0 if all(c.clean for c in counts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
