"""How deep the PostgreSQL clone pool should be, against how long tests take, on one server.

dbscope keeps clones made ahead (``CREATE DATABASE ... TEMPLATE``) in a pool that one
background thread fills while tests run; the pool's depth is how many wait ready
(``postgresql.DEFAULT_POOL_SIZE``, 2, or fewer when the server has few free connections).
This runs, on one server, SCOPES scopes through the library (strategy ``clone``, the
benchmark schema: benchmarks/schema/postgresql) for each pool depth and test duration, and
reports the milliseconds a scope costs beyond the test's own time (the mean, which is what a
run's length adds up, then the median and p90: a scope that finds a clone ready costs a few
ms, one that does not waits for a whole clone) and how many scopes found a clone ready (pool
hits). A test's duration is simulated by ``time.sleep``
after its first query: the test's own work, which the pool's thread overlaps with its next
clone. Every cell gets a fresh manager (and pool); the cells run in a shuffled order, ROUNDS
times, so the server's history (a disk's clones slow down under sustained create/drop) and
the machine's load hit them alike.

Usage: python benchmarks/bench_pg_pool.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
       [--depths 1,2,4] [--durations-ms 0,20,100] [--scopes 30] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from dbscope import BackendUnavailableError, IsolationManager
from dbscope.backends import postgresql

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema" / "postgresql"


def run_cell(url: str, depth: int, duration_ms: float, scopes: int) -> dict[str, Any]:
    """``scopes`` scopes with a pool ``depth`` deep and tests of ``duration_ms``: ms beyond the test a scope."""
    postgresql.DEFAULT_POOL_SIZE = depth  # read when the backend sizes its pool (and its creators' cache)
    manager = IsolationManager(
        url, strategy="clone", migrations=str(SCHEMA / "migrations"), seed=str(SCHEMA / "seed.sql"), env_var=[]
    )
    try:
        with manager.scope("warm") as scope:  # the template (cached on the server) and the pool's start
            scope.client().execute("SELECT 1")
        manager.wait_for_pools(timeout=60)  # a run's start-up: the pool fills while pytest collects
        overheads: list[float] = []
        hits_before = manager.metrics["pool_hits"]
        misses_before = manager.metrics["pool_misses"]
        for i in range(scopes):
            started = time.perf_counter()
            with manager.scope(f"t {i}") as scope:
                scope.client().execute("SELECT 1")
                if duration_ms:
                    time.sleep(duration_ms / 1000)  # the test's own work
            overheads.append((time.perf_counter() - started) * 1000 - duration_ms)
        metrics = manager.metrics
        return {
            "overhead_ms": overheads,
            "hits": metrics["pool_hits"] - hits_before,
            "misses": metrics["pool_misses"] - misses_before,
        }
    finally:
        manager.close()
        postgresql.DEFAULT_POOL_SIZE = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--depths", default="1,2,4")
    parser.add_argument("--durations-ms", default="0,20,100")
    parser.add_argument("--scopes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / "pg_pool.json"))
    args = parser.parse_args()

    depths = [int(d) for d in args.depths.split(",")]
    durations = [float(d) for d in args.durations_ms.split(",")]
    cells = [(depth, duration) for depth in depths for duration in durations]
    results: dict[tuple[int, float], dict[str, Any]] = {
        cell: {"overhead_ms": [], "hits": 0, "misses": 0} for cell in cells
    }
    load_before = os.getloadavg()
    started = time.monotonic()
    rng = random.Random(14)
    for _ in range(args.rounds):
        order = cells[:]
        rng.shuffle(order)
        for depth, duration in order:
            done = None
            for _attempt in range(3):
                try:
                    done = run_cell(args.url, depth, duration, args.scopes)
                    break
                except BackendUnavailableError as exc:  # the shared server's template dropped by another run
                    print(f"cell depth {depth}, {duration:g} ms: {exc}; running it again")
            if done is None:
                raise SystemExit(f"cell depth {depth}, {duration:g} ms failed 3 times")
            result = results[(depth, duration)]
            result["overhead_ms"] += done["overhead_ms"]
            result["hits"] += done["hits"]
            result["misses"] += done["misses"]
    load_after = os.getloadavg()

    print(
        f"{args.url}: ms a scope beyond the test's own time (mean; median; p90), strategy clone, "
        f"{args.scopes} scopes x {args.rounds} rounds a cell, cells shuffled"
    )
    print(
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs; "
        f"{time.monotonic() - started:.0f} s"
    )
    header = "| pool depth | " + " | ".join(f"tests of {d:g} ms" for d in durations) + " |"
    print(header)
    print("| --- " * (len(durations) + 1) + "|")
    rows = []
    for depth in depths:
        cells_text = []
        for duration in durations:
            result = results[(depth, duration)]
            values = result["overhead_ms"]
            mean = statistics.mean(values)
            median = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            total = result["hits"] + result["misses"]
            base = statistics.mean(results[(depths[0], duration)]["overhead_ms"])
            cells_text.append(
                f"{mean:.0f}; {median:.1f}; {p90:.0f} (x{mean / base:.2f}, {result['hits']}/{total} ready)"
            )
            rows.append(
                {
                    "depth": depth,
                    "duration_ms": duration,
                    "mean_ms": mean,
                    "median_ms": median,
                    "p90_ms": p90,
                    "mean_ratio_to_depth_" + str(depths[0]): mean / base,
                    "hits": result["hits"],
                    "misses": result["misses"],
                    "overhead_ms": values,
                }
            )
        print(f"| {depth} | " + " | ".join(cells_text) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "url": args.url,
                "scopes": args.scopes,
                "rounds": args.rounds,
                "load_average": {"before": load_before, "after": load_after},
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "cells": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
