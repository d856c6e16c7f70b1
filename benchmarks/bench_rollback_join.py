"""The FastAPI example's suite under clone, reset and rollback+join, against rollback through `db` alone.

examples/fastapi_app (22 tests: TestClient requests in the app's server thread, factory_boy
factories on `db_session`, commits, rollbacks, savepoints, unique-constraint errors) is copied
into a temporary directory and run whole, in a fresh interpreter per run, under:

  * clone: a database per test; the app's modules purged and imported again for each test
    (`dbscope_reset_modules=bookshop.database,bookshop.main`, as the example's README says)
  * reset: one database, emptied after each test
  * rollback+join: one database, each test one transaction rolled back at its end; the app's
    engine and sessionmaker (`dbscope_app_engines`, `dbscope_app_sessions`) join it
  * rollback via db alone: a suite of 22 tests on the same schema that only use `db`, for one
    INSERT and one SELECT each (no app, no `db_session`, no join): what the issue compares with

on sqlite:// (in-memory) and on PostgreSQL (a throwaway tmpfs cluster, as postgresql+proc://
starts, here started once for the whole benchmark; `--server URL` for a running server).

The baseline. A test of the example does real work (HTTP requests through TestClient, ORM
flushes), so there is no "same test without a database" to subtract, and `--collect-only`
would leave out the first test's one-time costs (importing the app, TestClient's first start,
building the template), which then land on the per-test figure. So every variant runs twice a
round: with 1 copy of its test files and with COPIES copies (the files duplicated under other
names, 22 x COPIES tests), timing each run's test loop (benchmarks/suite_runner.py: start-up
and collection are outside it). Per-test cost = (loop(COPIES) - loop(1)) / (22 x (COPIES - 1)):
interpreter start-up, collection and every one-time cost cancel, and what is left is what one
more test costs under that strategy, its own work included. Runs are interleaved (every
variant and size once per round), ROUNDS rounds, medians. The large run also writes dbscope's
JSON report: dbscope's self-reported setup + teardown a test, its own share of the cost.

Aims (issue 12): rollback+join within 0.5 ms a test of rollback via db alone, and at least 10x
cheaper than clone on PostgreSQL. The first is read on dbscope's own share (setup + teardown:
the join and the unjoin are in it); the whole-test difference is printed beside it, and also
holds the app's own work (requests, ORM), which no strategy can remove.

--profile runs one large rollback+join run per backend under cProfile and prints where the
time goes (dbscope's functions, SQLAlchemy, Starlette/TestClient, the driver).

Usage: python benchmarks/bench_rollback_join.py [--server [URL]] [--backends sqlite,postgresql]
       [--copies 4] [--rounds 3] [--profile] [--json PATH] [--txt PATH]
Writes benchmarks/results/rollback_join.json and the printed table to rollback_join.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from suite_runner import LOOP_TIMER, run_suite

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "fastapi_app"
SERVER_URL = os.environ.get("DBSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CLONE = ["-o", "dbscope_strategy=clone", "-o", "dbscope_reset_modules=bookshop.database,bookshop.main"]
#: variant -> (suite directory, the options of its strategy)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "clone": ("app", CLONE),
    "reset": ("app", ["-o", "dbscope_strategy=reset"]),
    "rollback+join": ("app", ["-o", "dbscope_strategy=rollback"]),
    "rollback via db alone": ("dbonly", ["-o", "dbscope_strategy=rollback"]),
}
DBONLY_TEST = """
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_insert_and_select(db, n):
    db.execute("INSERT INTO authors (name) VALUES (?)", (f"Author {{n}}",))
    assert db.execute("SELECT count(*) FROM authors").scalar() == 1
"""


def build(root: Path, copies: int) -> tuple[int, dict[str, dict[int, list[str]]]]:
    """The example's copy (``root/app``) and the db-only suite (``root/dbonly``), with test files
    for 1 and for ``copies`` copies; returns the tests in one copy and each run's files."""
    app = root / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".dbscope", ".pytest_cache", "__pycache__"))
    conftest = app / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text() + "\nimport os\nimport time\n" + LOOP_TIMER)
    files: dict[str, dict[int, list[str]]] = {"app": {1: [], copies: []}, "dbonly": {1: [], copies: []}}
    originals = sorted((app / "tests").glob("test_*.py"))
    for index in range(copies):
        for original in originals:
            name = f"tests/{original.stem}_c{index}.py"
            (app / name).write_text(original.read_text())
            files["app"][copies].append(name)
            if index == 0:
                files["app"][1].append(name)
    for original in originals:
        original.unlink()
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files["app"][1]],
        cwd=app,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    per_copy = sum(1 for line in collected.stdout.splitlines() if "::" in line)
    if not per_copy:
        raise SystemExit(f"collecting the example failed:\n{collected.stdout[-3000:]}\n{collected.stderr[-2000:]}")
    dbonly = root / "dbonly"
    dbonly.mkdir()
    (dbonly / "pytest.ini").write_text(
        "[pytest]\n"
        f"pythonpath = {app}\n"
        "dbscope_migrations = bookshop.models:Base.metadata\n"
        "filterwarnings = error\n"
        "addopts = -p no:asyncio\n"
    )
    (dbonly / "conftest.py").write_text("import os\nimport time\n\nimport pytest\n" + LOOP_TIMER)
    for index in range(copies):
        name = f"test_dbonly_c{index}.py"
        (dbonly / name).write_text(textwrap.dedent(DBONLY_TEST.format(count=per_copy)))
        files["dbonly"][copies].append(name)
        if index == 0:
            files["dbonly"][1].append(name)
    return per_copy, files


def one_run(root: Path, suite: str, files: list[str], extra: list[str], report: Path | None = None) -> float:
    more = [f"--dbscope-report={report}"] if report else []
    return run_suite(root / suite, files[0], [*files[1:], *extra, *more])


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def measure(args: argparse.Namespace, backends: dict[str, list[str]]) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_rj_") as tmp:
        root = Path(tmp)
        per_copy, files = build(root, args.copies)
        report = root / "report.json"
        plan = [(backend, variant) for backend in backends for variant in VARIANTS]
        times = {key: {1: [], args.copies: []} for key in plan}
        reported: dict = {key: [] for key in plan}
        for backend, variant in plan:  # warm-up: templates built and cached, files in the page cache
            suite, extra = VARIANTS[variant]
            one_run(root, suite, files[suite][1], [*extra, *backends[backend]])
        for round_no in range(args.rounds):
            for backend, variant in plan:
                suite, extra = VARIANTS[variant]
                for size in (1, args.copies):
                    with_report = report if size == args.copies else None
                    times[(backend, variant)][size].append(
                        one_run(root, suite, files[suite][size], [*extra, *backends[backend]], with_report)
                    )
                    if with_report:
                        summary = json.loads(report.read_text())["summary"]
                        reported[(backend, variant)].append(
                            summary["average_setup_ms"] + summary["average_teardown_ms"]
                        )
            print(f"round {round_no + 1}/{args.rounds} done, load {load()}", flush=True)
        extra_tests = per_copy * (args.copies - 1)
        for backend, variant in plan:
            small, large = times[(backend, variant)][1], times[(backend, variant)][args.copies]
            per_test = [(b - a) * 1000 / extra_tests for a, b in zip(small, large, strict=True)]
            results.setdefault(backend, {})[variant] = {
                "per_test_ms": statistics.median(per_test),
                "per_test_min_ms": min(per_test),
                "per_test_max_ms": max(per_test),
                "dbscope_setup_teardown_ms": statistics.median(reported[(backend, variant)]),
                "loop_s_1_copy": small,
                f"loop_s_{args.copies}_copies": large,
            }
        if args.profile:
            for backend in backends:
                suite, extra = VARIANTS["rollback+join"]
                results[backend]["profile"] = profile(
                    root, files[suite][args.copies], [*extra, *backends[backend]], per_copy * args.copies
                )
    return {"tests_per_copy": per_copy, "copies": args.copies, "rounds": args.rounds, "backends": results}


#: where a profiled function's file (or a built-in's name) says the time goes
BUCKETS = [
    ("dbscope", ("/dbscope/",)),
    ("SQLAlchemy", ("/sqlalchemy/",)),
    ("driver (sqlite3, psycopg)", ("sqlite3", "psycopg")),
    ("waiting (locks, sleep, select)", ("acquire", "sleep", "select", "poll", "wait")),
    ("Starlette/FastAPI/httpx/anyio (TestClient)", ("/starlette/", "/fastapi/", "/httpx/", "/anyio/", "/httpcore/")),
    ("pydantic", ("/pydantic",)),
    ("factory_boy", ("/factory/",)),
    ("pytest/pluggy", ("/_pytest/", "/pluggy/")),
    ("stdlib threading/asyncio", ("threading.py", "queue.py", "/concurrent/", "/asyncio/")),
]

#: a pytest plugin (``-p benchprofile``): cProfile in the main thread and in every thread the
#: tests start (TestClient's server thread, where the app runs), over the test loop only
PROFILER = """
import cProfile
import os
import pstats
import threading

import pytest

PROFILES = []


def _start_in_thread(*args):
    profile = cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()  # replaces this bootstrap function for the rest of the thread


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    main = cProfile.Profile()
    threading.setprofile(_start_in_thread)
    main.enable()
    try:
        return (yield)
    finally:
        main.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main)
        for profile in PROFILES:
            stats.add(profile)
        stats.dump_stats(os.environ["BENCH_PROFILE_FILE"])
"""


def profile(root: Path, files: list[str], extra: list[str], tests: int) -> dict:
    """One rollback+join run profiled in all its threads: own time by package, dbscope's top functions."""
    out = root / "profile.out"
    (root / "app" / "benchprofile.py").write_text(PROFILER)
    loop = run_suite(
        root / "app", files[0], [*files[1:], *extra, "-p", "benchprofile"], env={"BENCH_PROFILE_FILE": str(out)}
    )
    stats = pstats.Stats(str(out))
    buckets: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = function if filename == "~" else filename
        name = next((bucket for bucket, marks in BUCKETS if any(mark in where for mark in marks)), "other")
        buckets[name] = buckets.get(name, 0.0) + own
    ours = sorted(
        (
            (cum, own, f"{Path(f).name}:{line} {func}", calls)
            for (f, line, func), (_, calls, own, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
            if "/dbscope/" in f
        ),
        reverse=True,
    )[:15]
    return {
        "tests": tests,
        "loop_s_profiled": loop,
        "own_s_by_package": dict(sorted(buckets.items(), key=lambda kv: -kv[1])),
        "dbscope_top_cumulative": [{"function": f, "cumulative_s": c, "own_s": o, "calls": n} for c, o, f, n in ours],
    }


def table(data: dict, header: str) -> str:
    lines = [header, ""]
    for backend, variants in data["backends"].items():
        lines.append(f"{backend}: ms a test (median; min-max over rounds), dbscope's own setup+teardown")
        lines.append(f"  {'strategy':24} {'ms a test':>10} {'min-max':>15} {'dbscope own':>12}")
        for variant in VARIANTS:
            r = variants[variant]
            spread = f"{r['per_test_min_ms']:.2f}-{r['per_test_max_ms']:.2f}"
            lines.append(
                f"  {variant:24} {r['per_test_ms']:>10.2f} {spread:>15} {r['dbscope_setup_teardown_ms']:>12.2f}"
            )
        join, alone, clone = variants["rollback+join"], variants["rollback via db alone"], variants["clone"]
        own_gap = join["dbscope_setup_teardown_ms"] - alone["dbscope_setup_teardown_ms"]
        lines.append(
            f"  rollback+join - rollback via db alone: dbscope's own {own_gap:+.2f} ms a test "
            f"(aim <= 0.5: {'met' if own_gap <= 0.5 else 'missed'}); whole test "
            f"{join['per_test_ms'] - alone['per_test_ms']:+.2f} ms (the app's requests and ORM work included)"
        )
        ratio = clone["per_test_ms"] / join["per_test_ms"] if join["per_test_ms"] > 0 else float("inf")
        aim = f" (aim >= 10x on PostgreSQL: {'met' if ratio >= 10 else 'missed'})" if backend != "sqlite://" else ""
        lines.append(
            f"  clone / rollback+join: {ratio:.1f}x{aim}; reset / rollback+join: "
            f"{variants['reset']['per_test_ms'] / join['per_test_ms']:.1f}x"
        )
        if "profile" in variants:
            prof = variants["profile"]
            n = prof["tests"]
            lines.append(
                f"  rollback+join profiled ({n} tests, all threads; cProfile inflates): own ms a test by package:"
            )
            lines.append("    " + ", ".join(f"{k} {v * 1000 / n:.2f}" for k, v in prof["own_s_by_package"].items()))
            lines.append("    dbscope's functions, cumulative ms a test (calls a test):")
            for row in prof["dbscope_top_cumulative"][:10]:
                lines.append(f"    {row['cumulative_s'] * 1000 / n:8.3f}  ({row['calls'] / n:5.1f})  {row['function']}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server",
        nargs="?",
        const=SERVER_URL,
        default=None,
        help=f"PostgreSQL at this running server (default {SERVER_URL}) instead of a throwaway tmpfs cluster",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--copies", type=int, default=4, help="copies of the suite in the large run (the small run has 1)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", default=str(HERE / "results" / "rollback_join.json"))
    parser.add_argument("--txt", default=str(HERE / "results" / "rollback_join.txt"))
    args = parser.parse_args()
    if args.copies < 2:
        parser.error("--copies must be at least 2")
    wanted = set(args.backends.split(","))
    cluster = None
    backends: dict[str, list[str]] = {}
    if "sqlite" in wanted:
        backends["sqlite://"] = ["-o", "dbscope_url=sqlite://"]
    if "postgresql" in wanted:
        if args.server:
            pg_name, pg_url = f"postgresql:// ({args.server.split('@')[-1]})", args.server
        else:
            from dbscope.backends.pg_cluster import ThrowawayCluster

            cluster = ThrowawayCluster().start()
            pg_name, pg_url = "postgresql+proc:// (tmpfs cluster)", cluster.url
        backends[pg_name] = ["-o", f"dbscope_url={pg_url}"]
    before = load()
    try:
        data = measure(args, backends)
    finally:
        if cluster is not None:
            cluster.stop()
    after = load()
    data.update(
        {"load_before": before, "load_after": after, "cpus": os.cpu_count(), "python": platform.python_version()}
    )
    header = (
        f"FastAPI example ({data['tests_per_copy']} tests a copy), whole pytest runs of 1 and {args.copies} copies, "
        f"{args.rounds} interleaved rounds; per-test = (loop({args.copies}) - loop(1)) / "
        f"{data['tests_per_copy'] * (args.copies - 1)}\n{os.cpu_count()} CPUs, load average before {before}, "
        f"after {after}"
    )
    text = table(data, header)
    print("\n" + text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    Path(args.txt).write_text(text + "\n")
    print(f"wrote {args.json} and {args.txt}")


if __name__ == "__main__":
    main()
