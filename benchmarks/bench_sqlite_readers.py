"""Readers while a writer holds a transaction: what each way of giving a test its own SQLite database costs.

A named in-memory database (``file:/name?vfs=memdb``, dbscope's default until this
measurement) locks the whole database for a writer: a second connection that reads while
the first holds an open write transaction waits for its busy timeout, then fails with
"database is locked". The candidates, each cloned from a template of the 30-table
benchmark schema (benchmarks/schema/sqlite):

  a    memdb backup: backup() of the in-memory template into a file:/name?vfs=memdb database
  b1   tmpfs WAL, template in WAL: shutil.copyfile of a WAL template file on /dev/shm
  b2   tmpfs WAL, WAL set per copy: copyfile of a rollback-journal template, then
       PRAGMA journal_mode=WAL on the copy
  b3   tmpfs WAL by backup: backup() of the in-memory template into a new WAL file
  c    tmpfs rollback journal: copyfile of a rollback-journal template file

(``PRAGMA read_uncommitted`` with a shared cache is no candidate: its readers see
uncommitted rows.)

Part 1, readers: on each candidate, a writer holds an open transaction with one
uncommitted row (and then with 12 MB of uncommitted rows, more than SQLite's page cache
holds); a second connection (busy timeout 0.2 s) reads. "committed" = it read the last
committed rows at once and never the uncommitted ones.

Part 2, one clone alone (in-process, N repetitions interleaved, medians): create (copy or
backup, connect), first query (the schema is read), drop (close, delete the files).

Part 3, an in-place restore (the reset strategy): backup() of the in-memory template into
the test's database, after a test deleted rows, memdb against a WAL file on tmpfs.

Part 4, whole pytest runs of TESTS trivial tests, interleaved, ROUNDS times, timing each
run's test loop: tests taking no database (the baseline), tests taking a fixture that
clones per test with each candidate (create + first query, drop at teardown), and tests
taking dbscope's ``db`` under each strategy: with no statement, with one query (which
reads the schema) and with one INSERT. ``--src NAME=DIR`` (repeatable) runs the dbscope variants with dbscope
imported from DIR (a checkout's ``src``) instead of the installed one, for a before/after.
Per-test overhead = (run time - baseline run time) / TESTS, per round, medians.

Usage: python benchmarks/bench_sqlite_readers.py [--tests 1000] [--rounds 5] [--clones 1500]
       [--src before=DIR --src after=DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suite_runner import LOOP_TIMER, overheads, run_suite, write_tests  # noqa: E402

from dbscope.migrations import load_migrations  # noqa: E402

SCHEMA = HERE / "schema" / "sqlite"
SUFFIXES = ("", "-wal", "-shm", "-journal")
READER_TIMEOUT_S = 0.2


class Templates:
    """The benchmark schema migrated once, in memory and as template files on tmpfs."""

    def __init__(self) -> None:
        migrations = load_migrations(str(SCHEMA / "migrations"))
        seed = load_migrations(str(SCHEMA / "seed.sql"), setting="dbscope_seed")
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.directory = Path(tempfile.mkdtemp(prefix="bench_readers_", dir=base))
        self.memory = sqlite3.connect(f"file:/bench_readers_tpl_{os.getpid()}?vfs=memdb", uri=True)
        self.memory.execute("PRAGMA foreign_keys = ON")
        migrations.apply(self.memory)
        seed.apply(self.memory)
        self.memory.commit()
        self.wal = self._file("template_wal.sqlite3", wal=True)
        self.journal = self._file("template_journal.sqlite3", wal=False)
        self.tables = [
            row[0]
            for row in self.memory.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        self.image_kb = len(self.memory.serialize()) / 1024

    def _file(self, name: str, *, wal: bool) -> Path:
        path = self.directory / name
        conn = sqlite3.connect(str(path))
        self.memory.backup(conn)
        if wal:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
        conn.close()  # the last connection checkpoints: the file holds everything, no -wal is left
        return path

    def close(self) -> None:
        self.memory.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@dataclass
class Clone:
    conn: sqlite3.Connection
    target: str  # what another connection opens
    uri: bool
    path: str | None  # the file to delete, if any


class Candidate:
    name = ""

    def __init__(self, templates: Templates) -> None:
        self.t = templates

    def create(self, i: int) -> Clone:
        raise NotImplementedError

    def first_query(self, clone: Clone) -> None:
        clone.conn.execute(f"SELECT count(*) FROM {self.t.tables[0]}").fetchall()

    def drop(self, clone: Clone) -> None:
        clone.conn.close()
        if clone.path is not None:
            for suffix in SUFFIXES:
                try:
                    os.unlink(clone.path + suffix)
                except FileNotFoundError:
                    pass


class MemdbBackup(Candidate):
    name = "a   memdb backup (today)"

    def create(self, i: int) -> Clone:
        target = f"file:/bench_readers_{os.getpid()}_{i}?vfs=memdb"
        conn = _connect(target, uri=True)
        self.t.memory.backup(conn)
        return Clone(conn, target, True, None)


class WalTemplateCopy(Candidate):
    name = "b1  tmpfs WAL, template in WAL"

    def create(self, i: int) -> Clone:
        path = str(self.t.directory / f"clone_{i}.sqlite3")
        shutil.copyfile(self.t.wal, path)
        return Clone(_connect(path), path, False, path)


class WalPerCopy(Candidate):
    name = "b2  tmpfs WAL, set on each copy"

    def create(self, i: int) -> Clone:
        path = str(self.t.directory / f"clone_{i}.sqlite3")
        shutil.copyfile(self.t.journal, path)
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        return Clone(conn, path, False, path)


class WalBackup(Candidate):
    name = "b3  tmpfs WAL by backup()"

    def create(self, i: int) -> Clone:
        path = str(self.t.directory / f"clone_{i}.sqlite3")
        conn = _connect(path)
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        self.t.memory.backup(conn)
        return Clone(conn, path, False, path)


class JournalCopy(Candidate):
    name = "c   tmpfs rollback journal"

    def create(self, i: int) -> Clone:
        path = str(self.t.directory / f"clone_{i}.sqlite3")
        shutil.copyfile(self.t.journal, path)
        return Clone(_connect(path), path, False, path)


CANDIDATES: dict[str, type[Candidate]] = {
    "a": MemdbBackup,
    "b1": WalTemplateCopy,
    "b2": WalPerCopy,
    "b3": WalBackup,
    "c": JournalCopy,
}


# ---------------------------------------------------------------- part 1: readers


def _read(clone: Clone, table: str) -> tuple[str, float]:
    reader = sqlite3.connect(clone.target, uri=clone.uri, timeout=READER_TIMEOUT_S)
    started = time.perf_counter()
    try:
        count = reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        outcome = f"count {count}"
    except sqlite3.OperationalError as exc:
        outcome = str(exc)
    finally:
        reader.close()
    return outcome, (time.perf_counter() - started) * 1000


def readers(candidate: Candidate, i: int) -> dict[str, str]:
    """What a reader gets while the clone's own connection holds uncommitted rows, small and large."""
    clone = candidate.create(i)
    table = "bench_readers_rows"
    try:
        writer = clone.conn
        writer.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body BLOB)")
        writer.execute(f"INSERT INTO {table} (body) VALUES (x'00')")
        writer.execute("BEGIN")
        writer.execute(f"INSERT INTO {table} (body) VALUES (x'01')")
        small, small_ms = _read(clone, table)
        writer.executemany(f"INSERT INTO {table} (body) VALUES (?)", [(os.urandom(4000),) for _ in range(3000)])
        large, large_ms = _read(clone, table)
        writer.execute("ROLLBACK")
    finally:
        candidate.drop(clone)

    def verdict(outcome: str, ms: float) -> str:
        if outcome == "count 1":
            return f"committed ({ms:.1f} ms)"
        if outcome.startswith("count"):
            return f"UNCOMMITTED rows seen ({outcome})"
        return f"blocked: {outcome} ({ms:.0f} ms)"

    return {"1 uncommitted row": verdict(small, small_ms), "12 MB uncommitted": verdict(large, large_ms)}


# ---------------------------------------------------------------- part 2: one clone


def clone_costs(templates: Templates, repetitions: int) -> dict[str, dict[str, float]]:
    candidates = {key: cls(templates) for key, cls in CANDIDATES.items()}
    samples: dict[str, dict[str, list[float]]] = {
        key: {"create": [], "first_query": [], "drop": [], "total": []} for key in candidates
    }
    for i in range(repetitions):  # interleaved, so that machine noise hits every candidate alike
        for key, candidate in candidates.items():
            t0 = time.perf_counter_ns()
            clone = candidate.create(i)
            t1 = time.perf_counter_ns()
            candidate.first_query(clone)
            t2 = time.perf_counter_ns()
            candidate.drop(clone)
            t3 = time.perf_counter_ns()
            s = samples[key]
            s["create"].append((t1 - t0) / 1e6)
            s["first_query"].append((t2 - t1) / 1e6)
            s["drop"].append((t3 - t2) / 1e6)
            s["total"].append((t3 - t0) / 1e6)
    results = {}
    for key, s in samples.items():
        results[key] = {f"{part}_ms": statistics.median(values) for part, values in s.items()}
    base = results["a"]["total_ms"]
    for r in results.values():
        r["ratio_to_memdb"] = r["total_ms"] / base
    return results


# ---------------------------------------------------------------- part 3: in-place restore


def restore_costs(templates: Templates, repetitions: int) -> dict[str, dict[str, float]]:
    memdb = MemdbBackup(templates).create(10**9)
    wal = WalTemplateCopy(templates).create(10**9)
    targets = {"a": memdb, "b1": wal}
    table = templates.tables[len(templates.tables) // 2]
    samples: dict[str, list[float]] = {key: [] for key in targets}
    try:
        for _ in range(repetitions):
            for key, clone in targets.items():
                clone.conn.execute(f"DELETE FROM {table}")
                started = time.perf_counter_ns()
                templates.memory.backup(clone.conn)
                samples[key].append((time.perf_counter_ns() - started) / 1e6)
    finally:
        MemdbBackup(templates).drop(memdb)
        WalTemplateCopy(templates).drop(wal)
    results = {key: {"median_ms": statistics.median(values)} for key, values in samples.items()}
    for r in results.values():
        r["ratio_to_memdb"] = r["median_ms"] / results["a"]["median_ms"]
    return results


# ---------------------------------------------------------------- part 4: whole pytest runs

CONFTEST = (
    """
import os
import sys
import time
import pytest

sys.path.insert(0, {here!r})
import bench_sqlite_readers as bench

@pytest.fixture(scope="session")
def templates():
    t = bench.Templates()
    yield t
    t.close()

_COUNTER = iter(range(10**9))

def _candidate(key):
    @pytest.fixture
    def fixture(templates):
        candidate = bench.CANDIDATES[key](templates)
        clone = candidate.create(next(_COUNTER))
        candidate.first_query(clone)
        yield clone.conn
        candidate.drop(clone)
    return fixture

for _key in bench.CANDIDATES:
    globals()[f"clone_{{_key}}"] = _candidate(_key)
"""
    + LOOP_TIMER
)


#: what a test does with ``db`` in the variants beyond the empty test: read (the schema too), write one row
TEST_STATEMENTS = {
    "query": "SELECT count(*) FROM users",
    "insert": "INSERT INTO roles (name) VALUES ('bench')",
}


def write_suite(root: Path, tests: int) -> None:
    (root / "pytest.ini").write_text(
        f"[pytest]\ndbscope_migrations = {SCHEMA / 'migrations'}\ndbscope_seed = {SCHEMA / 'seed.sql'}\n"
    )
    (root / "conftest.py").write_text(CONFTEST.format(here=str(HERE)))
    write_tests(root, tests, {"none": "", "dbscope": "db", **{f"clone_{k}": f"clone_{k}" for k in CANDIDATES}})
    for name, statement in TEST_STATEMENTS.items():
        (root / f"test_dbscope_{name}.py").write_text(
            textwrap.dedent(
                f"""
                import pytest

                @pytest.mark.parametrize("n", range({tests}))
                def test_dbscope_{name}(db, n):
                    db.execute({statement!r})
                """
            )
        )
    # which dbscope each run imported, to be sure --baseline-src took effect
    (root / "test_which.py").write_text(
        textwrap.dedent(
            """
            import os, dbscope

            def test_which():
                with open(os.environ["BENCH_WHICH_FILE"], "w") as out:
                    out.write(os.path.dirname(dbscope.__file__))
            """
        )
    )


def which_dbscope(root: Path, env: dict[str, str]) -> str:
    which = root / "which.txt"
    run_suite(root, "test_which.py", [], env={**env, "BENCH_WHICH_FILE": str(which)})
    return which.read_text()


def pytest_costs(
    tests: int, rounds: int, sources: dict[str, str]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    variants: dict[str, tuple[str, list[str], dict[str, str]]] = {"no database (baseline)": ("test_none.py", [], {})}
    for key, cls in CANDIDATES.items():
        variants[f"fixture: {cls.name}"] = (f"test_clone_{key}.py", [], {})
    builds: dict[str, dict[str, str]] = {"installed": {}}
    if sources:
        builds = {label: {"PYTHONPATH": os.path.abspath(path)} for label, path in sources.items()}
    for strategy in ("clone", "reset", "rollback"):
        kinds = [("test_dbscope.py", "db")] + [(f"test_dbscope_{k}.py", f"db + 1 {k}") for k in TEST_STATEMENTS]
        for file, what in kinds:
            for label, env in builds.items():
                variants[f"{what}, {strategy} ({label})"] = (file, [f"--dbscope-strategy={strategy}"], env)
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_") as tmp:
        root = Path(tmp)
        write_suite(root, tests)
        imported = {label: which_dbscope(root, env) for label, env in builds.items()}
        for file, extra, env in variants.values():  # warm-up: imports, bytecode, page cache
            run_suite(root, file, extra, env=env)
        for _ in range(rounds):
            for name, (file, extra, env) in variants.items():
                times[name].append(run_suite(root, file, extra, env=env))
    results = overheads(times, "no database (baseline)", tests)
    # each candidate fixture against memdb's; each build's dbscope variant against the first build's
    memdb = results[f"fixture: {CANDIDATES['a'].name}"]["overhead_per_test_ms"]
    for cls in CANDIDATES.values():
        results[f"fixture: {cls.name}"]["ratio"] = results[f"fixture: {cls.name}"]["overhead_per_test_ms"] / memdb
    first = next(iter(builds))
    for name, r in results.items():
        if name.endswith(f"({first})"):
            base = r["overhead_per_test_ms"]
            for label in builds:
                other = results[name.replace(f"({first})", f"({label})")]
                other["ratio"] = other["overhead_per_test_ms"] / base if base > 0 else float("nan")
    return results, imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clones", type=int, default=1500)
    parser.add_argument("--src", action="append", default=[], metavar="NAME=DIR", help="dbscope from DIR (a src)")
    parser.add_argument("--skip-pytest", action="store_true", help="parts 1-3 only")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_sqlite_readers.json"))
    args = parser.parse_args()

    templates = Templates()
    try:
        probes = {key: readers(cls(templates), 10**8 + n) for n, (key, cls) in enumerate(CANDIDATES.items())}
        clones = clone_costs(templates, args.clones)
        restores = restore_costs(templates, args.clones)
        tables, image_kb = len(templates.tables), templates.image_kb
    finally:
        templates.close()
    sources = dict(item.split("=", 1) for item in args.src)
    runs, imported = ({}, {}) if args.skip_pytest else pytest_costs(args.tests, args.rounds, sources)

    names = {key: cls.name for key, cls in CANDIDATES.items()}
    print(
        f"\nSQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; schema: {tables} tables, image {image_kb:.0f} kB"
    )
    print(f"\n1. A reader (busy timeout {READER_TIMEOUT_S:g} s) while the clone's connection holds uncommitted rows")
    print(f"{'candidate':34} {'1 uncommitted row':>30} {'12 MB uncommitted':>44}")
    for key, probe in probes.items():
        print(f"{names[key]:34} {probe['1 uncommitted row']:>30} {probe['12 MB uncommitted']:>44}")
    print(f"\n2. One clone alone ({args.clones} each, interleaved; medians, ms)")
    print(f"{'candidate':34} {'create':>8} {'1st query':>10} {'drop':>8} {'total':>8} {'x memdb':>8}")
    for key, r in clones.items():
        print(
            f"{names[key]:34} {r['create_ms']:>8.3f} {r['first_query_ms']:>10.3f} {r['drop_ms']:>8.3f} "
            f"{r['total_ms']:>8.3f} {r['ratio_to_memdb']:>8.2f}"
        )
    print(f"\n3. In-place restore from the in-memory template ({args.clones} each, interleaved)")
    for key, r in restores.items():
        print(f"{names[key]:34} {r['median_ms']:>8.3f} ms {r['ratio_to_memdb']:>8.2f} x memdb")
    if runs:
        print(f"\n4. Whole pytest runs, {args.tests} tests each, {args.rounds} interleaved rounds")
        for label, path in imported.items():
            print(f"   dbscope of {label}: {path}")
        print(f"{'variant':44} {'run s':>8} {'per-test overhead ms (median, min-max)':>40} {'ratio':>6}")
        for name, r in runs.items():
            spread = f"{r['overhead_per_test_ms']:.3f} ({r['overhead_min_ms']:.3f}-{r['overhead_max_ms']:.3f})"
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
            print(f"{name:44} {r['loop_median_s']:>8.3f} {spread:>40} {ratio:>6}")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count(),
                    "load_at_end": os.getloadavg()[0],
                },
                "schema": {"tables": tables, "image_kb": image_kb},
                "candidates": names,
                "readers": probes,
                "clone": clones,
                "restore": restores,
                "pytest": runs,
                "dbscope_imported_from": imported,
                "tests": args.tests,
                "rounds": args.rounds,
                "clones": args.clones,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
