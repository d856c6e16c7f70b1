"""What a fresh PostgreSQL database from a template costs: WAL_LOG vs FILE_COPY, tmpfs vs disk.

Schema: benchmarks/schema/postgresql (30 tables, 43 indexes, 4 views, 30 triggers, 235 seed
rows), applied once into a template database on each server.

Servers, side by side in one run:
  * a throwaway cluster (dbscope's postgresql+proc://: data on tmpfs, fsync/full_page_writes/
    synchronous_commit off), started and stopped by this script, its start/stop timed too;
  * the machine's server at 127.0.0.1:5432 (data on its disk), if it answers (--server to change).

One sample = CREATE DATABASE x TEMPLATE t STRATEGY s + connect + SELECT 1 + close +
DROP DATABASE x WITH (FORCE), each step timed. N iterations; in each, every (server, strategy)
pair runs once, in a shuffled order, so machine noise hits them alike.

Only databases named dbscope_bench_* that this run created are created and dropped.

Usage: python benchmarks/bench_pg_clone.py [--iterations 30] [--server URL|none] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dbscope.backends.pg_cluster import ThrowawayCluster

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema" / "postgresql"
STRATEGIES = ("WAL_LOG", "FILE_COPY")
STEPS = ("create", "connect", "drop", "total")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


class Target:
    """One server: its maintenance connection, its template and the clones made on it."""

    def __init__(self, label: str, url: str, run: str) -> None:
        self.label = label
        self.url = url
        self.template = f"dbscope_bench_{run}_template"
        self.admin = psycopg.connect(url, autocommit=True)
        self.created: set[str] = set()

    def build_template(self) -> float:
        started = time.perf_counter()
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        self.created.add(self.template)
        with psycopg.connect(with_database(self.url, self.template), autocommit=True) as conn:
            for path in [*sorted((SCHEMA / "migrations").glob("*.sql")), SCHEMA / "seed.sql"]:
                # without parameters psycopg sends a whole file of statements at once
                conn.execute(path.read_text())
        return (time.perf_counter() - started) * 1000

    def sample(self, name: str, strategy: str) -> dict[str, float]:
        ident = sql.Identifier(name)
        t0 = time.perf_counter()
        self.admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                ident, sql.Identifier(self.template), sql.SQL(strategy)
            )
        )
        self.created.add(name)
        t1 = time.perf_counter()
        with psycopg.connect(with_database(self.url, name)) as conn:
            conn.execute("SELECT 1").fetchone()
        t2 = time.perf_counter()
        self.admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
        self.created.discard(name)
        t3 = time.perf_counter()
        return {
            "create": (t1 - t0) * 1000,
            "connect": (t2 - t1) * 1000,
            "drop": (t3 - t2) * 1000,
            "total": (t3 - t0) * 1000,
        }

    def close(self) -> None:
        for name in sorted(self.created):
            self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="or 'none'")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_pg_clone.json"))
    args = parser.parse_args()
    run = f"{os.getpid()}"
    rng = random.Random(20240601)

    started = time.perf_counter()
    cluster = ThrowawayCluster().start()
    cluster_start_ms = (time.perf_counter() - started) * 1000
    targets = [Target("throwaway cluster (tmpfs, fsync off)", cluster.url, run)]
    try:
        if args.server != "none":
            try:
                targets.append(
                    Target("server at " + args.server.split("@")[-1].split("/")[0] + " (disk)", args.server, run)
                )
            except psycopg.OperationalError as exc:
                print(f"skipping {args.server}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        template_ms = {t.label: t.build_template() for t in targets}
        samples: dict[tuple[str, str], list[dict[str, float]]] = {(t.label, s): [] for t in targets for s in STRATEGIES}
        pairs = [(t, s) for t in targets for s in STRATEGIES]
        for i in range(args.iterations):
            rng.shuffle(pairs)
            for target, strategy in pairs:
                name = f"dbscope_bench_{run}_{i}_{strategy.lower()}"
                samples[(target.label, strategy)].append(target.sample(name, strategy))
    finally:
        for target in targets:
            target.close()
        started = time.perf_counter()
        cluster.stop()
        cluster_stop_ms = (time.perf_counter() - started) * 1000

    results: dict[str, dict[str, dict[str, float]]] = {}
    for (label, strategy), rows in samples.items():
        results[f"{label} / {strategy}"] = {
            step: {
                "median_ms": round(statistics.median(r[step] for r in rows), 2),
                "p95_ms": round(percentile([r[step] for r in rows], 0.95), 2),
            }
            for step in STEPS
        }

    print(
        f"\nPostgreSQL {cluster.version}, psycopg {psycopg.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {args.iterations} interleaved iterations; times in ms (median / p95)\n"
    )
    header = f"{'server / strategy':<52}" + "".join(f"{step:>18}" for step in STEPS)
    print(header)
    print("-" * len(header))
    for key, steps in results.items():
        print(f"{key:<52}" + "".join(f"{steps[s]['median_ms']:>9.1f} /{steps[s]['p95_ms']:>6.1f}" for s in STEPS))
    print(
        f"\nthrowaway cluster: start {cluster_start_ms:.0f} ms (initdb {cluster.timings['initdb_ms']:.0f} ms, "
        f"server {cluster.timings['server_start_ms']:.0f} ms), stop {cluster_stop_ms:.0f} ms"
    )
    for label, ms in template_ms.items():
        print(f"template build (migrations + seed) on {label}: {ms:.0f} ms")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "postgresql": cluster.version,
            "psycopg": psycopg.__version__,
            "cpus": os.cpu_count(),
        },
        "iterations": args.iterations,
        "sample": "CREATE DATABASE ... TEMPLATE ... STRATEGY s + connect + SELECT 1 + close + DROP ... WITH (FORCE)",
        "clone": results,
        "cluster": {
            "start_ms": round(cluster_start_ms, 1),
            "stop_ms": round(cluster_stop_ms, 1),
            **{k: round(v, 1) for k, v in cluster.timings.items()},
        },
        "template_build_ms": {k: round(v, 1) for k, v in template_ms.items()},
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
