"""What a fresh, migrated SQLite database costs per test: dbscope against the naive way.

Schema: benchmarks/schema/sqlite (30 tables, 43 indexes, 4 views, 30 triggers, 235 seed rows).

Part 1, the clone alone (in-process, N repetitions, median and p95; create, connect, close, delete):
  * dbscope clone: a copy of the migrated template's WAL file on tmpfs (/dev/shm), connected
  * memdb backup: backup() of the template into a file:/name?vfs=memdb database (dbscope's
    clone until readers had to read while a writer holds a transaction:
    benchmarks/bench_sqlite_readers.py)
  * deserialize(): the template's bytes into a private :memory: database
  * naive: a new :memory: database running every migration and seed statement

Part 2, whole pytest runs of the same TESTS trivial tests, side by side and interleaved,
ROUNDS times, timing each run's test loop (pytest_runtestloop) so interpreter start-up
and collection do not add noise: tests taking no database (the baseline), tests taking dbscope's `db`
fixture (clone, and the reset and rollback strategies), the same with the JSON report
on, and tests taking a naive migrate-per-test fixture. Per-test overhead = (run time - baseline run time) / TESTS, medians over rounds.
Two more suites run a statement: through `db` (dbscope's own connection), and through a
connection the test opens by the database's URL, as an app does. Two more wait 2 ms on I/O
a test, without a database and with `db`: the process is idle meanwhile, and the clone
pool's thread clones ahead (the two rows differ by dbscope's cost). Every dbscope run
also writes the JSON report (after the timed loop), whose self-reported overhead (setup +
teardown a test) is printed beside that run's whole-run figure: the report must not hide cost.

--compare SRC runs every dbscope variant twice in each round, interleaved: with the
dbscope in SRC (PYTHONPATH=SRC, e.g. a `git worktree` of the commit before a change) and
with the installed one, and prints both with their ratio. The load average before and
after is printed and kept: on a shared machine, read the figures with it.

Usage: python benchmarks/bench_sqlite.py [--tests 1000] [--rounds 5] [--json PATH] [--compare SRC]
       [--skip-clones]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from dbscope.migrations import load_migrations
from suite_runner import LOOP_TIMER, overheads, run_suite, write_tests

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema" / "sqlite"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def clone_costs(repetitions: int) -> dict[str, dict[str, float]]:
    migrations = load_migrations(str(SCHEMA / "migrations"))
    seed = load_migrations(str(SCHEMA / "seed.sql"), setting="dbscope_seed")
    template = sqlite3.connect(":memory:", check_same_thread=False)
    migrations.apply(template)
    seed.apply(template)
    image = template.serialize()
    statements = [s.sql for step in (*migrations.steps, *seed.steps) for s in step.statements]  # type: ignore[attr-defined]
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="dbscope_bench_", dir=shm))
    wal_template = directory / "template.sqlite3"
    conn = sqlite3.connect(wal_template)
    template.backup(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()

    def copy_wal(i: int) -> None:
        path = directory / f"clone_{i}.sqlite3"
        shutil.copyfile(wal_template, path)
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def backup_memdb(i: int) -> None:
        conn = sqlite3.connect(f"file:/bench_{i}?vfs=memdb", uri=True, check_same_thread=False)
        template.backup(conn)
        conn.close()

    def deserialize(i: int) -> None:
        conn = sqlite3.connect(":memory:")
        conn.deserialize(image)
        conn.close()

    def naive(i: int) -> None:
        conn = sqlite3.connect(":memory:")
        for sql in statements:
            conn.execute(sql)
        conn.commit()
        conn.close()

    results: dict[str, dict[str, float]] = {}
    methods = {
        "dbscope clone (copy of a WAL file, tmpfs)": copy_wal,
        "memdb backup (the clone before WAL)": backup_memdb,
        "deserialize()": deserialize,
        "naive (run every migration)": naive,
    }
    samples: dict[str, list[float]] = {name: [] for name in methods}
    try:
        for i in range(repetitions):  # interleaved so that machine noise hits every method alike
            for name, method in methods.items():
                started = time.perf_counter_ns()
                method(i)
                samples[name].append((time.perf_counter_ns() - started) / 1e6)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for name, values in samples.items():
        results[name] = {"median_ms": statistics.median(values), "p95_ms": percentile(values, 0.95)}
    results["_statements"] = {"count": float(len(statements)), "image_kb": len(image) / 1024}
    return results


CONFTEST = '''
import os
import sqlite3
import time
import pytest
from dbscope.migrations import load_migrations

_SETS = [load_migrations({migrations!r}), load_migrations({seed!r}, setting="dbscope_seed")]
STATEMENTS = [s.sql for m in _SETS for step in m.steps for s in step.statements]

@pytest.fixture
def naive_db():
    conn = sqlite3.connect(":memory:")
    for sql in STATEMENTS:
        conn.execute(sql)
    conn.commit()
    yield conn
    conn.close()
''' + LOOP_TIMER


#: tests that run one statement: through `db`, and through a connection of their own opened by
#: the database's URL (what an app's engine does), closed before the test ends
STATEMENT_TESTS = '''
import sqlite3
import threading
import pytest

IO = threading.Event()  # never set: each wait is a test blocked on I/O (a socket, a subprocess)

@pytest.mark.parametrize("n", range({tests}))
def test_io_wait_alone(n):
    IO.wait(0.002)

@pytest.mark.parametrize("n", range({tests}))
def test_io_wait(db, n):
    IO.wait(0.002)

@pytest.mark.parametrize("n", range({tests}))
def test_query(db, n):
    db.execute("SELECT count(*) FROM users")

@pytest.mark.parametrize("n", range({tests}))
def test_app_connection(db_url, n):
    conn = sqlite3.connect(db_url.split(":///", 1)[1])
    conn.execute("SELECT count(*) FROM users").fetchall()
    conn.close()
'''


def write_suite(root: Path, tests: int) -> None:
    (root / "pytest.ini").write_text(
        f"[pytest]\ndbscope_migrations = {SCHEMA / 'migrations'}\ndbscope_seed = {SCHEMA / 'seed.sql'}\n"
    )
    (root / "conftest.py").write_text(CONFTEST.format(migrations=str(SCHEMA / "migrations"), seed=str(SCHEMA / "seed.sql")))
    write_tests(root, tests, {"none": "", "dbscope": "db", "naive": "naive_db"})
    (root / "test_statements.py").write_text(STATEMENT_TESTS.format(tests=tests))


VARIANTS: dict[str, tuple[str, list[str]]] = {
    "no database (baseline)": ("test_none.py", []),
    "dbscope db fixture": ("test_dbscope.py", []),
    "dbscope db, strategy reset": ("test_dbscope.py", ["--dbscope-strategy=reset"]),
    "dbscope db, strategy rollback": ("test_dbscope.py", ["--dbscope-strategy=rollback"]),
    "dbscope db + JSON report": ("test_dbscope.py", ["--dbscope-report=report.json"]),
    "dbscope db, one query": ("test_statements.py::test_query", []),
    "dbscope db_url, app's own connection, one query": ("test_statements.py::test_app_connection", []),
    "naive migrate-per-test fixture": ("test_naive.py", []),
    # the process idle 2 ms a test: the clone pool's thread clones ahead meanwhile
    "no database, test waits 2 ms on I/O": ("test_statements.py::test_io_wait_alone", []),
    "dbscope db, test waits 2 ms on I/O": ("test_statements.py::test_io_wait", []),
}
REPORTED = "dbscope db + JSON report"


def pytest_costs(tests: int, rounds: int, compare: str | None = None) -> dict[str, dict[str, float]]:
    """Per-test overheads of every variant; with ``compare``, each dbscope variant also as "<name> [before]"."""
    runs: dict[str, tuple[str, list[str], dict[str, str]]] = {}
    for name, (file, extra) in VARIANTS.items():
        if compare is not None and name.startswith("dbscope"):
            runs[f"{name} [before]"] = (file, extra, {"PYTHONPATH": compare})
        runs[name] = (file, extra, {})
    times: dict[str, list[float]] = {name: [] for name in runs}
    # every dbscope run writes the JSON report (at the session's end, after the timed test loop;
    # each test's record is kept with or without it), so each has a self-reported figure
    for name, (file, extra, env) in runs.items():
        if name.startswith("dbscope") and not any(arg.startswith("--dbscope-report") for arg in extra):
            runs[name] = (file, [*extra, "--dbscope-report=report.json"], env)
    reported: dict[str, list[float]] = {name: [] for name in runs if name.startswith("dbscope")}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_") as tmp:
        root = Path(tmp)
        write_suite(root, tests)
        for name, (file, extra, env) in runs.items():  # warm-up: imports, bytecode, page cache
            run_suite(root, file, extra, env=env)
        for _ in range(rounds):
            for name, (file, extra, env) in runs.items():
                times[name].append(run_suite(root, file, extra, env=env))
                if name in reported:
                    summary = json.loads((root / "report.json").read_text())["summary"]
                    reported[name].append(summary["average_setup_ms"] + summary["average_teardown_ms"])
    results = overheads(times, "no database (baseline)", tests)
    for name, values in reported.items():
        results[name]["self_reported_ms"] = statistics.median(values)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clones", type=int, default=2000)
    parser.add_argument("--json", default=str(HERE / "results" / "bench_sqlite.json"))
    parser.add_argument("--report-supported", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", metavar="SRC", help="also run each dbscope variant with the dbscope in SRC")
    parser.add_argument("--skip-clones", action="store_true", help="only the whole pytest runs")
    args = parser.parse_args()

    load_before = os.getloadavg()
    clones = clone_costs(args.clones) if not args.skip_clones else {"_statements": {"count": 0.0, "image_kb": 0.0}}
    runs = pytest_costs(args.tests, args.rounds, args.compare)
    load_after = os.getloadavg()
    info = clones.pop("_statements")

    print(f"\nSQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"schema: {int(info['count'])} statements, image {info['image_kb']:.0f} kB")
    if clones:
        print(f"\nA fresh database alone ({args.clones} each, interleaved)")
        print(f"{'method':40} {'median ms':>10} {'p95 ms':>10}")
    for name, r in clones.items():
        print(f"{name:40} {r['median_ms']:>10.3f} {r['p95_ms']:>10.3f}")
    print(f"\nWhole pytest runs, {args.tests} tests each, {args.rounds} interleaved rounds")
    print(f"{'variant':40} {'run s':>8} {'per-test overhead ms (median, min-max)':>40}")
    for name, r in runs.items():
        spread = f"{r['overhead_per_test_ms']:.3f} ({r['overhead_min_ms']:.3f}-{r['overhead_max_ms']:.3f})"
        print(f"{name:56} {r['loop_median_s']:>8.3f} {spread:>40}")
    for name, r in runs.items():
        if "self_reported_ms" in r:
            gap = r["overhead_per_test_ms"] - r["self_reported_ms"]
            print(f"{name}: self-reported {r['self_reported_ms']:.3f} ms a test, whole run "
                  f"{r['overhead_per_test_ms']:.3f} ms (unreported {gap:.3f} ms)")
    if args.compare:
        print(f"\nbefore ({args.compare}) -> after, per-test overhead (median ms)")
        for name, r in runs.items():
            before = runs.get(f"{name} [before]")
            if before is not None:
                b, a = before["overhead_per_test_ms"], r["overhead_per_test_ms"]
                print(f"{name:56} {b:>7.3f} -> {a:>7.3f}  ({a / b if b > 0 else float('nan'):.2f}x)")
    print(f"\nload average (1, 5, 15 min): before {load_before}, after {load_after}")
    ours = runs["dbscope db fixture"]["overhead_per_test_ms"]
    naive = runs["naive migrate-per-test fixture"]["overhead_per_test_ms"]
    ratio = naive / ours if ours > 0 else float("inf")
    print(f"\ndbscope per-test overhead {ours:.3f} ms; naive {naive:.3f} ms; naive / dbscope = {ratio:.1f}x")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count()},
        "schema": info, "clone": clones, "pytest": runs, "naive_over_dbscope": ratio,
        "tests": args.tests, "rounds": args.rounds, "compare": args.compare,
        "load_average": {"before": load_before, "after": load_after},
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
