"""What a fresh, migrated MariaDB/MySQL database costs per test: dbscope against pytest-mysql.

Side by side in one run, on the same server and the same schema (benchmarks/schema/mariadb:
30 tables, 43 secondary indexes, 39 foreign keys, 4 views, 30 triggers, 235 seed rows). Whole
pytest runs of TESTS tests per run, ROUNDS interleaved rounds, timing each run's test loop:

  * no database (the baseline)
  * dbscope `db`, strategy clone (a database per test, copied from the template, from the pool)
  * dbscope `db`, strategy reset (one database; after each test the tables it changed are
    restored, AUTO_INCREMENT included), with tests that write nothing and tests that insert a row
  * dbscope `db`, strategy rollback (one database; each test in a rolled-back transaction),
    with the same two kinds of test
  * pytest-mysql `mysql` fixture (mysql_noproc on the same server: it creates a database per
    test and drops it after; the schema and seed are loaded into it per test by a fixture on
    top, the way pytest-mysql is used, statements split once at start-up)

Per-test cost = (loop time - baseline loop time) / TESTS, median over rounds, "steady": without
the first test (whose time includes one-time costs: the first connection, the pool's or the
shared database's start), over TESTS - 1 tests; "whole loop": with it, over TESTS tests.
"insert a row" variants include the insert itself.

Servers: --url (default mysql://root@127.0.0.1:3306/, the system server) or --proc: one
throwaway mariadbd on tmpfs started by dbscope (the server behind mysql+proc://: binary log
off, InnoDB log flushed once a second), which BOTH tools use through its mysql:// URL, so the
comparison is on the same server process with the same settings. (pytest-mysql's own
mysql_proc would start a differently configured server per session: unequal and slower.)

With --before SRC (a src/ directory of another dbscope, e.g. `git archive <commit> src | tar -x
-C /tmp/before`), every dbscope variant also runs with that dbscope first on PYTHONPATH,
interleaved with the others in every round: a before/after on the same server at the same load.

Usage: python benchmarks/bench_mariadb.py [--url mysql://root@127.0.0.1:3306/ | --proc]
       [--tests 60] [--rounds 3] [--before SRC] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from suite_runner import LOOP_TIMER, overheads, run_suite, write_tests

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema" / "mariadb"
PMY_DB = "bench_pytest_mysql"
BASELINE = "no database (baseline)"
PMY = "pytest-mysql mysql fixture + schema"

CONFTEST = """
import json
import os
import time
from pathlib import Path

import pytest

try:
    from pytest_mysql import factories
except ImportError:  # pytest-mysql not installed: its variant is skipped by the driver
    factories = None

if factories is not None:
    STATEMENTS = json.loads(Path({statements!r}).read_text())
    mysql_noproc = factories.mysql_noproc(host={host!r}, port={port!r}, user={user!r})
    mysql = factories.mysql("mysql_noproc", dbname={dbname!r}, charset={charset!r}, collation={collation!r})

    @pytest.fixture
    def mysql_schema(mysql):
        with mysql.cursor() as cursor:
            for sql in STATEMENTS:
                cursor.execute(sql)
        mysql.commit()
        return mysql


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # the loop's seconds up to the end of the first test (its setup, teardown, and one-time costs)
    first = os.environ["BENCH_LOOP_FILE"] + ".first"
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        if not os.path.exists(first):
            with open(first, "w") as out:
                out.write(repr(time.perf_counter() - started))
"""

#: tests that insert one row (into ``logs``, which has no triggers), so reset has a table to restore
WRITES = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_writes(db, n):
    db.execute("INSERT INTO logs (message) VALUES ('bench')")
"""


def write_suite(root: Path, tests: int, url: str, server: dict[str, str]) -> None:
    from dbscope.migrations import split_statements

    files = [*sorted((SCHEMA / "migrations").glob("*.sql")), SCHEMA / "seed.sql"]
    statements = [statement.sql for path in files for statement in split_statements(path.read_text())]
    (root / "statements.json").write_text(json.dumps(statements))
    parts = urlsplit(url)
    (root / "pytest.ini").write_text(
        "[pytest]\n"
        f"dbscope_url = {url}\n"
        f"dbscope_migrations = {SCHEMA / 'migrations'}\n"
        f"dbscope_seed = {SCHEMA / 'seed.sql'}\n"
    )
    (root / "conftest.py").write_text(
        CONFTEST.format(
            statements=str(root / "statements.json"),
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            dbname=PMY_DB,
            charset=server["charset"],
            collation=server["collation"],
        )
        + LOOP_TIMER
    )
    write_tests(root, tests, {"none": "", "dbscope": "db", "pmy": "mysql_schema"})
    (root / "test_writes.py").write_text(textwrap.dedent(WRITES.format(tests=tests)))


def server_facts(url: str) -> dict[str, str]:
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root", password=parts.password or ""
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT @@version, @@character_set_server, @@collation_server, @@datadir, "
                "@@innodb_flush_log_at_trx_commit, @@log_bin"
            )
            version, charset, collation, datadir, flush, log_bin = cursor.fetchone()
    finally:
        conn.close()
    return {
        "version": str(version),
        "charset": str(charset),
        "collation": str(collation),
        "datadir": str(datadir),
        "innodb_flush_log_at_trx_commit": str(flush),
        "log_bin": str(log_bin),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("DBSCOPE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"))
    parser.add_argument("--tests", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--proc", action="store_true", help="run on one throwaway tmpfs mariadbd (both tools) instead of --url"
    )
    parser.add_argument("--before", default=None, help="src/ of another dbscope: its variants too")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    name = "bench_mariadb_proc.json" if args.proc else "bench_mariadb.json"
    args.json = args.json or str(HERE / "results" / name)
    if not args.proc:
        measure(args)
        return
    from dbscope.backends.mariadb_proc import ThrowawayServer

    with ThrowawayServer() as server:
        args.url = server.url
        measure(args)


def measure(args: argparse.Namespace) -> None:
    try:
        import pytest_mysql  # noqa: F401  (only whether it is installed)

        have_pmy = True
    except ImportError:
        have_pmy = False
        print("pytest-mysql is not installed (pip install pytest-mysql): its variant is left out")

    load_before = os.getloadavg()
    server = server_facts(args.url)
    no_dbscope = ["-p", "no:dbscope"]
    variants: dict[str, tuple[str, list[str], dict[str, str] | None]] = {
        BASELINE: ("test_none.py", no_dbscope, None),
        "dbscope clone": ("test_dbscope.py", [], None),
        "dbscope reset": ("test_dbscope.py", ["--dbscope-strategy=reset"], None),
        "dbscope reset, test inserts a row": ("test_writes.py", ["--dbscope-strategy=reset"], None),
        "dbscope rollback": ("test_dbscope.py", ["--dbscope-strategy=rollback"], None),
        "dbscope rollback, test inserts a row": ("test_writes.py", ["--dbscope-strategy=rollback"], None),
    }
    if args.before:
        before = {"PYTHONPATH": str(Path(args.before).resolve())}
        for name in [n for n in variants if n.startswith("dbscope ")]:
            file, extra, _ = variants[name]
            variants[f"before: {name[len('dbscope ') :]}"] = (file, extra, before)
    if have_pmy:
        variants[PMY] = ("test_pmy.py", no_dbscope, None)

    times: dict[str, list[float]] = {name: [] for name in variants}
    steady: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_mariadb_") as tmp:
        root = Path(tmp)
        first = root / "loop_seconds.txt.first"
        write_suite(root, args.tests, args.url, server)
        for file, extra, env in variants.values():  # warm-up; builds and caches the template
            if file != "test_pmy.py":  # (pytest-mysql has nothing to cache)
                run_suite(root, file, extra, env=env)
        for _ in range(args.rounds):
            for name, (file, extra, env) in variants.items():
                first.unlink(missing_ok=True)
                loop = run_suite(root, file, extra, env=env)
                times[name].append(loop)
                steady[name].append(loop - float(first.read_text()))

    whole = overheads(times, BASELINE, args.tests)
    results = overheads(steady, BASELINE, args.tests - 1)
    where = "throwaway mariadbd on tmpfs" if args.proc else "system server"
    load = os.getloadavg()
    lines = [
        f"MariaDB {server['version']} at {args.url.split('@')[-1]} ({where}, datadir {server['datadir']}, "
        f"innodb_flush_log_at_trx_commit={server['innodb_flush_log_at_trx_commit']}), "
        f"{args.tests} tests per run, {args.rounds} interleaved rounds",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average before the run "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after it "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared with other work: ratios are per round too)",
        f"{'variant':40} {'loop s':>8} {'per-test cost ms, steady (median, min-max)':>44} {'whole loop':>11}",
    ]
    for name, r in results.items():
        spread = f"{r['overhead_per_test_ms']:.2f} ({r['overhead_min_ms']:.2f}-{r['overhead_max_ms']:.2f})"
        lines.append(
            f"{name:40} {whole[name]['loop_median_s']:>8.2f} {spread:>44} {whole[name]['overhead_per_test_ms']:>11.2f}"
        )
    ratios: dict[str, float] = {}
    round_ratios: dict[str, list[float]] = {}
    if have_pmy:
        pmy = results[PMY]["overhead_per_test_ms"]
        for name in variants:
            if name.startswith(("dbscope", "before")):
                ours = results[name]["overhead_per_test_ms"]
                ratios[name] = pmy / ours if ours > 0 else float("inf")
                # round by round too: on a shared machine one round's noise can hit one variant only
                by_round = [
                    (p - base) / (o - base) if o > base else float("inf")
                    for p, o, base in zip(steady[PMY], steady[name], steady[BASELINE], strict=True)
                ]
                round_ratios[name] = by_round
                lines.append(
                    f"pytest-mysql / {name}: {ratios[name]:.1f}x (rounds: {', '.join(f'{r:.1f}x' for r in by_round)})"
                )
    table = "\n".join(lines)
    print("\n" + table)

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "url": args.url.split("@")[-1],
        "server": server,
        "throwaway": args.proc,
        "tests": args.tests,
        "rounds": args.rounds,
        "loadavg": load,
        "loadavg_before": load_before,
        "before": args.before,
        "cpus": os.cpu_count(),
        "pytest": results,
        "pytest_whole_loop": whole,
        "ratios": ratios,
        "ratios_by_round": round_ratios,
        "raw_loop_s": times,
        "raw_steady_s": steady,
    }
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".txt").write_text(table + "\n")
    print(f"wrote {out} and {out.with_suffix('.txt')}")


if __name__ == "__main__":
    main()
