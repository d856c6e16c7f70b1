"""What one scope costs through the library, with no pytest around it: a loop of scopes per strategy.

On the benchmark schema (benchmarks/schema/<dialect>: 30 tables, 235 seed rows), each
strategy runs SCOPES scopes that each take a client and run `SELECT 1` (with --writes N,
also a committed write to each of N tables of the schema: 1-3), ROUNDS rounds,
strategies interleaved; the table shows the median milliseconds a scope. To compare two
versions of dbscope side by side, run it twice, alternating, with PYTHONPATH pointing at
the other checkout's src/ for one of them.

Usage: python benchmarks/bench_scope_loop.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
       [--strategies rollback,reset,clone] [--scopes 200] [--rounds 5] [--writes N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from dbscope import IsolationManager

HERE = Path(__file__).resolve().parent
#: what a test that writes does, table by table (--writes N runs the first N); the same on both dialects
WRITES = (
    "INSERT INTO users (name, email) VALUES ('Bench', 'bench-{i}@example.com')",
    "UPDATE products SET stock = stock + 1 WHERE id = 1",
    "DELETE FROM sessions",
)


def time_restores() -> list[float]:
    """Milliseconds of each PostgreSQL restore from now on (the backend's restore, timed from outside)."""
    from dbscope.backends import postgresql

    restores: list[float] = []
    restore = postgresql.PostgreSQLBackend._restore

    def timed(self: postgresql.PostgreSQLBackend, database: Any, template: Any) -> bool:
        started = time.perf_counter()
        try:
            return restore(self, database, template)
        finally:
            restores.append((time.perf_counter() - started) * 1000)

    postgresql.PostgreSQLBackend._restore = timed  # type: ignore[method-assign]
    return restores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--strategies", default="rollback,reset,clone")
    parser.add_argument("--scopes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=0, choices=range(len(WRITES) + 1))
    parser.add_argument("--json", default=str(HERE / "results" / "scope_loop.json"))
    args = parser.parse_args()

    dialect = "sqlite" if args.url.startswith("sqlite") else "postgresql"
    restores = time_restores() if dialect == "postgresql" else None
    schema = HERE / "schema" / dialect
    strategies = args.strategies.split(",")
    times: dict[str, list[float]] = {name: [] for name in strategies}
    managers = {
        name: IsolationManager(
            args.url, strategy=name, migrations=str(schema / "migrations"), seed=str(schema / "seed.sql"), env_var=[]
        )
        for name in strategies
    }
    try:
        for manager in managers.values():  # warm: templates, pools, prepared statements
            for i in range(30):
                with manager.scope(f"warm {i}") as scope:
                    scope.client().execute("SELECT 1")
        if restores is not None:
            restores.clear()
        for _ in range(args.rounds):
            for name, manager in managers.items():
                started = time.perf_counter()
                for i in range(args.scopes):
                    with manager.scope(f"t {i}") as scope:
                        client = scope.client()
                        client.execute("SELECT 1")
                        for statement in WRITES[: args.writes]:
                            client.execute(statement.format(i=i))
                times[name].append((time.perf_counter() - started) / args.scopes * 1000)
    finally:
        for manager in managers.values():
            manager.close()

    writes = f", writing {args.writes} table(s) each" if args.writes else ""
    print(f"{args.url}: ms a scope{writes}, {args.scopes} scopes x {args.rounds} rounds, interleaved")
    for name, values in times.items():
        print(f"{name:<10} median {statistics.median(values):7.3f}   min {min(values):7.3f}   max {max(values):7.3f}")
    if restores:  # reset, and rollback after another connection's commit
        print(f"restore    median {statistics.median(restores):7.3f} ms  ({len(restores)} restores on PostgreSQL)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "url": args.url,
                "scopes": args.scopes,
                "writes": args.writes,
                "ms_a_scope": times,
                "restore_ms_median": statistics.median(restores) if restores else None,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
