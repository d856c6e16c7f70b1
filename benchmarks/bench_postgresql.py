"""What a fresh, migrated PostgreSQL database costs per test: dbscope against pytest-postgresql.

Side by side in one run, on the same server and the same schema (benchmarks/schema/postgresql:
30 tables, 43 indexes, 4 views, 30 triggers, 235 seed rows). Whole pytest runs of the same
TESTS trivial tests, ROUNDS interleaved rounds, timing each run's test loop:

  * no database (the baseline)
  * dbscope `db`, strategy clone (a database per test from the template, from the pool)
  * dbscope `db`, strategy rollback (one database; each test in a rolled-back transaction)
  * pytest-postgresql `postgresql` fixture (postgresql_noproc with the schema loaded once
    into its template; a database per test created from it)

Per-test overhead = (loop time - baseline loop time) / TESTS, median over rounds. Also:
the time to the first test with the template cached versus built from scratch
(--dbscope-rebuild), and the clone pool's sustained refill rate.

Usage: python benchmarks/bench_postgresql.py [--url postgresql://postgres@127.0.0.1:5432/postgres | --proc]
       [--tests 100] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from suite_runner import LOOP_TIMER, overheads, run_suite, write_tests

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema" / "postgresql"

CONFTEST = '''
import os
import time
from pathlib import Path

import pytest

try:
    from pytest_postgresql import factories
except ImportError:  # pytest-postgresql not installed: its variant is skipped by the driver
    factories = None

SCHEMA = Path({schema!r})
FILES = sorted((SCHEMA / "migrations").glob("*.sql")) + [SCHEMA / "seed.sql"]

if factories is not None:
    postgresql_noproc = factories.postgresql_noproc(
        host={host!r}, port={port!r}, user={user!r}, dbname="dbscope_bench_ppg", load=list(FILES)
    )
    postgresql = factories.postgresql("postgresql_noproc", dbname="dbscope_bench_ppg")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    path = os.environ.get("BENCH_FIRST_TEST_FILE")
    if path and not os.path.exists(path):
        with open(path, "w") as out:
            out.write(repr(time.time()))
    return (yield)
'''


def write_suite(root: Path, tests: int, url: str) -> None:
    parts = urlsplit(url)
    (root / "pytest.ini").write_text(
        "[pytest]\n"
        f"dbscope_url = {url}\n"
        f"dbscope_migrations = {SCHEMA / 'migrations'}\n"
        f"dbscope_seed = {SCHEMA / 'seed.sql'}\n"
    )
    (root / "conftest.py").write_text(
        CONFTEST.format(schema=str(SCHEMA), host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres")
        + LOOP_TIMER
    )
    write_tests(root, tests, {"none": "", "dbscope": "db", "ppg": "postgresql"})


def time_to_first_test(root: Path, extra: list[str]) -> float:
    marker = root / "first_test.txt"
    marker.unlink(missing_ok=True)
    started = time.time()
    run_suite(root, "test_dbscope.py", [*extra, "-k", "test_dbscope and 0]"], env={"BENCH_FIRST_TEST_FILE": str(marker)})
    return float(marker.read_text()) - started


def refill_rate(url: str, seconds: float) -> dict[str, float]:
    """Databases per second the pool's thread keeps cloning, measured through the library."""
    from dbscope import IsolationManager

    with IsolationManager(url, migrations=str(SCHEMA / "migrations"), seed=str(SCHEMA / "seed.sql"), env_vars=[]) as manager:
        with manager.scope("warm-up"):
            pass
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            with manager.scope(f"refill {count}"):
                count += 1
        elapsed = time.perf_counter() - started
        metrics = manager.metrics
    return {"scopes_per_s": count / elapsed, "pool_hits": metrics["pool_hits"], "pool_misses": metrics["pool_misses"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("DBSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--refill-seconds", type=float, default=5.0)
    parser.add_argument("--proc", action="store_true", help="run on a throwaway tmpfs cluster (fsync off) instead of --url")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cluster = None
    if args.proc:
        from dbscope.backends.pg_cluster import ThrowawayCluster

        cluster = ThrowawayCluster().start()
        args.url = cluster.url
    name = "bench_postgresql_proc.json" if args.proc else "bench_postgresql.json"
    args.json = args.json or str(HERE / "results" / name)
    try:
        measure(args)
    finally:
        if cluster is not None:
            cluster.stop()


def measure(args: argparse.Namespace) -> None:

    try:
        import pytest_postgresql  # noqa: F401  (only whether it is installed)

        have_ppg = True
    except ImportError:
        have_ppg = False
        print("pytest-postgresql is not installed (pip install pytest-postgresql): its variant is left out")

    variants: dict[str, tuple[str, list[str]]] = {
        "no database (baseline)": ("test_none.py", ["-p", "no:dbscope"]),
        "dbscope clone": ("test_dbscope.py", []),
        "dbscope rollback": ("test_dbscope.py", ["--dbscope-strategy=rollback"]),
    }
    if have_ppg:
        variants["pytest-postgresql postgresql fixture"] = ("test_ppg.py", ["-p", "no:dbscope"])

    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_pg_") as tmp:
        root = Path(tmp)
        write_suite(root, args.tests, args.url)
        for file, extra in variants.values():  # warm-up; builds and caches the templates
            run_suite(root, file, extra)
        for _ in range(args.rounds):
            for name, (file, extra) in variants.items():
                times[name].append(run_suite(root, file, extra))
        first_cached = [time_to_first_test(root, []) for _ in range(3)]
        first_fresh = [time_to_first_test(root, ["--dbscope-rebuild"]) for _ in range(3)]
    refill = refill_rate(args.url, args.refill_seconds)

    results = overheads(times, "no database (baseline)", args.tests)

    print(f"\nPostgreSQL at {args.url.split('@')[-1]}, {args.tests} tests per run, {args.rounds} interleaved rounds")
    print(f"{'variant':40} {'loop s':>8} {'per-test overhead ms (median, min-max)':>40}")
    for name, r in results.items():
        spread = f"{r['overhead_per_test_ms']:.2f} ({r['overhead_min_ms']:.2f}-{r['overhead_max_ms']:.2f})"
        print(f"{name:40} {r['loop_median_s']:>8.2f} {spread:>40}")
    ratios = {}
    if have_ppg:
        ppg = results["pytest-postgresql postgresql fixture"]["overhead_per_test_ms"]
        for name in ("dbscope clone", "dbscope rollback"):
            ours = results[name]["overhead_per_test_ms"]
            ratios[name] = ppg / ours if ours > 0 else float("inf")
            print(f"pytest-postgresql / {name}: {ratios[name]:.1f}x")
    print(f"time to first test: template cached {statistics.median(first_cached):.2f} s, "
          f"built from scratch {statistics.median(first_fresh):.2f} s (medians of 3)")
    print(f"pool refill, sustained: {refill['scopes_per_s']:.1f} scopes/s "
          f"(pool hits {refill['pool_hits']}, misses {refill['pool_misses']})")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"url": args.url.split("@")[-1], "tests": args.tests, "rounds": args.rounds,
                               "pytest": results, "ratios": ratios,
                               "first_test_s": {"cached": first_cached, "fresh": first_fresh}, "refill": refill}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
