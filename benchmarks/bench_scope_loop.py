"""What one scope costs through the library, with no pytest around it: a loop of scopes per strategy.

On the benchmark schema (benchmarks/schema/<dialect>: 30 tables, 235 seed rows), each
strategy runs SCOPES scopes that each take a client and run `SELECT 1` (with --writes N,
also a committed write to each of N tables of the schema: 1-3), ROUNDS rounds,
strategies interleaved; the table shows the median milliseconds a scope. To compare two
versions of dbscope side by side, run it twice, alternating, with PYTHONPATH pointing at
the other checkout's src/ for one of them. For PostgreSQL's restore alone, --against
OTHER_SRC alternates, scope by scope in this one process, this checkout's restore
(backends/pg_snapshot.py) with the one in OTHER_SRC (e.g. a `git worktree` of an older
commit), so both see the same load, and prints both medians and their ratio.

Usage: python benchmarks/bench_scope_loop.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
       [--strategies rollback,reset,clone] [--scopes 200] [--rounds 5] [--writes N] [--json PATH]
       [--against OTHER_SRC]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
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


def other_restore(src: str) -> Any:
    """``restore()`` of the pg_snapshot.py under ``src`` (another checkout), callable as this one's is."""
    import importlib.util

    from dbscope.backends import pg_snapshot

    path = Path(src) / "dbscope" / "backends" / "pg_snapshot.py"
    spec = importlib.util.spec_from_file_location("dbscope.backends._pg_snapshot_other", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    accepted = set(inspect.signature(module.restore).parameters)

    def restore(conn: Any, snapshot: Any, **options: Any) -> Any:
        done = module.restore(conn, snapshot, **{k: v for k, v in options.items() if k in accepted})
        if isinstance(done, pg_snapshot.Restored):
            return done
        # an older Restored: what this checkout's backend reads from it (the catalog it was given is
        # still good: the restore's DDL count is checked before any reuse)
        return pg_snapshot.Restored(done.dropped, done.tables, done.partial, done.untracked, options.get("catalog"))

    return restore


def time_restores(against: str | None = None) -> dict[str, list[float]]:
    """Milliseconds of each PostgreSQL restore from now on (the backend's restore, timed from outside).

    With ``against``, restores alternate between this checkout's and that one's: keys "this" and "other".
    """
    from dbscope.backends import postgresql

    restores: dict[str, list[float]] = {"this": [], **({"other": []} if against else {})}
    restore = postgresql.PostgreSQLBackend._restore
    implementations = {"this": postgresql.restore}
    if against:
        implementations["other"] = other_restore(against)
    turn = [0]

    def timed(self: postgresql.PostgreSQLBackend, database: Any, template: Any) -> bool:
        which = list(implementations)[turn[0] % len(implementations)]
        turn[0] += 1
        postgresql.restore = implementations[which]  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            return restore(self, database, template)
        finally:
            restores[which].append((time.perf_counter() - started) * 1000)

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
    parser.add_argument("--against", help="another checkout's src/: alternate its PostgreSQL restore with this one's")
    args = parser.parse_args()

    dialect = "sqlite" if args.url.startswith("sqlite") else "postgresql"
    restores = time_restores(args.against) if dialect == "postgresql" else None
    load_before = os.getloadavg()
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
            for values in restores.values():
                values.clear()
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

    load_after = os.getloadavg()
    writes = f", writing {args.writes} table(s) each" if args.writes else ""
    print(f"{args.url}: ms a scope{writes}, {args.scopes} scopes x {args.rounds} rounds, interleaved")
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs")
    for name, values in times.items():
        print(f"{name:<10} median {statistics.median(values):7.3f}   min {min(values):7.3f}   max {max(values):7.3f}")
    medians = {which: statistics.median(values) for which, values in (restores or {}).items() if values}
    for which, median in medians.items():  # reset, and rollback after another connection's commit
        values = (restores or {})[which]
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else median
        label = "restore" if which == "this" else f"restore of {args.against}"
        print(f"{label}: median {median:.3f} ms, p90 {p90:.3f} ms ({len(values)} restores on PostgreSQL)")
    if len(medians) == 2:
        print(f"ratio other/this: {medians['other'] / medians['this']:.2f}x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "url": args.url,
                "scopes": args.scopes,
                "writes": args.writes,
                "load_average": {"before": load_before, "after": load_after},
                "ms_a_scope": times,
                "restore_ms_median": medians.get("this"),
                "against": args.against,
                "restore_ms_median_against": medians.get("other"),
                "restore_ms": restores,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
