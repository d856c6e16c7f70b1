"""Isolation, proven with generated tests: every scope sees the template plus its own writes.

Three properties, each checked against a plain Python model or the raw driver:

* in process: hypothesis generates "tests" (random INSERT/UPDATE/DELETE, CREATE/DROP
  TABLE), runs each in its own scope (clone: interleaved, several scopes alive at once;
  reset and rollback: one after another, in random order) and compares what each scope
  sees with the model after every write;
* under pytest-xdist: a seeded generator writes a real test file of such tests, in a
  shuffled order, and runs it with ``-n 2``; each inner test asserts it sees only the seed
  rows plus its own writes;
* a ``dbscope.Client`` returns what the driver itself returns (rows, columns, affected
  rows, last row id, or the same error) for random statements and values.

Bounded for CI: hypothesis is derandomized under ``CI=true`` and the suites' seeds are
fixed there; locally both are random. ``DBSCOPE_ISOLATION_EXAMPLES`` scales the number of
examples, ``DBSCOPE_ISOLATION_SEED`` replays one xdist suite (its seed is printed and
recorded in the figures).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import secrets
import sqlite3
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.sqlitefiles import database_files, run_entries
from reliability.waiting import wait_until

from dbscope import IsolationManager

if TYPE_CHECKING:
    from conftest import MakeProject
    from reliability.figures import Figures

# load, soak, fault or fuzz: `./run tests --all` and CI run this module, `./run tests` does not
pytestmark = pytest.mark.slow

CI = os.environ.get("CI", "").lower() == "true"
SCALE = float(os.environ.get("DBSCOPE_ISOLATION_EXAMPLES", "1"))


def bounded(examples: int) -> settings:
    """``examples`` (times DBSCOPE_ISOLATION_EXAMPLES) examples, the same ones on every CI run."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=CI,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


SCHEMA = """\
-- dbscope reliability suite: isolation properties
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""
SEED_SQL = """\
INSERT INTO items VALUES (1, 'seed-1', 10), (2, 'seed-2', 20), (3, 'seed-3', 30);
INSERT INTO notes VALUES (1, 'keep me');
"""
SEED_ITEMS = {1: ("seed-1", 10), 2: ("seed-2", 20), 3: ("seed-3", 30)}


# -- the model ------------------------------------------------------------------------------


@dataclass
class State:
    """What a database should contain: the template's rows plus one test's own writes."""

    items: dict[int, tuple[str, int]] = field(default_factory=lambda: dict(SEED_ITEMS))
    notes: int | None = 1  # row count of the notes table; None once dropped
    extra: dict[int, list[int]] = field(default_factory=dict)  # extra_<k> tables and their values


Op = tuple[Any, ...]


def apply(op: Op, state: State) -> list[tuple[str, list[Any]]]:
    """Update the model for ``op``; return the statements that do the same to a database."""
    kind = op[0]
    if kind == "insert":
        _, key, name, qty = op
        if key in state.items:
            state.items[key] = (name, qty)
            return [("UPDATE items SET name = ?, qty = ? WHERE id = ?", [name, qty, key])]
        state.items[key] = (name, qty)
        return [("INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", [key, name, qty])]
    if kind == "update":
        _, low, high, delta = op
        for key, (name, qty) in list(state.items.items()):
            if low <= key <= high:
                state.items[key] = (name, qty + delta)
        return [("UPDATE items SET qty = qty + ? WHERE id BETWEEN ? AND ?", [delta, low, high])]
    if kind == "delete":
        _, low, high = op
        state.items = {k: v for k, v in state.items.items() if not low <= k <= high}
        return [("DELETE FROM items WHERE id BETWEEN ? AND ?", [low, high])]
    if kind == "table":
        _, number, value = op
        statements: list[tuple[str, list[Any]]] = []
        if number not in state.extra:
            state.extra[number] = []
            statements.append((f"CREATE TABLE extra_{number} (v INTEGER NOT NULL)", []))
        state.extra[number] = sorted([*state.extra[number], value])
        return [*statements, (f"INSERT INTO extra_{number} (v) VALUES (?)", [value])]
    if kind == "drop":
        _, number = op
        if number == 0:
            if state.notes is None:
                return []
            state.notes = None
            return [("DROP TABLE notes", [])]
        if number not in state.extra:
            return []
        del state.extra[number]
        return [(f"DROP TABLE extra_{number}", [])]
    raise AssertionError(op)


_name = st.text(alphabet="abcé€'; ", min_size=1, max_size=6)
ops = st.one_of(
    st.tuples(st.just("insert"), st.integers(1, 8), _name, st.integers(-50, 50)),
    st.tuples(st.just("update"), st.integers(1, 8), st.integers(1, 8), st.integers(-5, 5)),
    st.tuples(st.just("delete"), st.integers(1, 8), st.integers(1, 8)),
    st.tuples(st.just("table"), st.integers(1, 3), st.integers(0, 99)),
    st.tuples(st.just("drop"), st.integers(0, 3)),
)
tests = st.lists(st.lists(ops, max_size=5), min_size=1, max_size=4)
few_tests = st.lists(st.lists(ops, max_size=5), min_size=1, max_size=3)  # PostgreSQL: a clone is ~0.2-1 s


def observe(execute: Callable[[str], list[tuple[Any, ...]]], dialect: str) -> State:
    """Read a database's state through ``execute`` (a client's or a raw connection's)."""
    if dialect == "sqlite":
        tables = {r[0] for r in execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    else:
        tables = {r[0] for r in execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    state = State(items={r[0]: (r[1], r[2]) for r in execute("SELECT id, name, qty FROM items ORDER BY id")})
    state.notes = execute("SELECT count(*) FROM notes")[0][0] if "notes" in tables else None
    for table in sorted(t for t in tables if t.startswith("extra_")):
        state.extra[int(table.removeprefix("extra_"))] = [r[0] for r in execute(f"SELECT v FROM {table} ORDER BY v")]
    return state


class Runner:
    """One generated test running in a scope: applies its ops and checks what it sees."""

    def __init__(self, manager: IsolationManager, name: str, ops: list[Op], dialect: str) -> None:
        self.manager, self.name, self.ops, self.dialect = manager, name, ops, dialect
        self.state = State()
        self.done = 0
        self.scope_id: str | None = None
        self.client: Any = None

    def open(self, scope_id: str) -> None:
        self.scope_id = scope_id
        self.client = self.manager.get_scoped_client(scope_id)  # tracked: closed when the scope ends
        self.check("at start")

    def check(self, where: str) -> None:
        client = self.client
        seen = observe(lambda sql: [tuple(r) for r in client.execute(sql).rows], self.dialect)
        assert seen == self.state, f"{self.name} {where}: sees {seen}, expected {self.state}"

    def step(self) -> None:
        op = self.ops[self.done]
        for sql, args in apply(op, self.state):
            self.client.execute(sql, args)
        self.done += 1
        self.check(f"after {op}")


def run_interleaved(manager: IsolationManager, generated: list[list[Op]], order: list[int], dialect: str) -> int:
    """Clone: each event moves one test a step on; scopes open and close in between. Returns the max alive."""
    runners = [Runner(manager, f"t{i}", list(g), dialect) for i, g in enumerate(generated)]
    alive = most = 0
    for index in order:
        runner = runners[index]
        if runner.scope_id is None:
            runner.open(manager.create_scope(runner.name))
            alive += 1
            most = max(most, alive)
        if runner.done < len(runner.ops):
            runner.step()
            continue
        assert runner.scope_id is not None  # opened above
        scope = manager.get_scope(runner.scope_id)
        raw = scope.connect()  # another connection, by the scope's URL, sees the same database
        try:
            assert observe(partial(_raw_rows, raw), dialect) == runner.state, (
                f"{runner.name}: its URL shows another database"
            )
        finally:
            raw.close()
        assert manager.destroy_scope(runner.scope_id)
        alive -= 1
    assert alive == 0
    return most


def _raw_rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def run_in_turn(manager: IsolationManager, generated: list[list[Op]], dialect: str) -> None:
    """Reset and rollback: one scope at a time on the worker's one database, each from a clean start."""
    for i, generated_ops in enumerate(generated):
        with manager.scope(f"t{i}") as scope:
            runner = Runner(manager, f"t{i}", generated_ops, dialect)
            runner.open(scope.id)
            while runner.done < len(generated_ops):
                runner.step()


@st.composite
def schedules(
    draw: st.DrawFn, generator: st.SearchStrategy[list[list[Op]]] = tests
) -> tuple[list[list[Op]], list[int]]:
    generated = draw(generator)
    events = [i for i, g in enumerate(generated) for _ in range(len(g) + 1)]
    return generated, draw(st.permutations(events))


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("isolation_sources")
    (directory / "migrations").mkdir()
    (directory / "migrations" / "0001_items.sql").write_text(SCHEMA)
    (directory / "seed.sql").write_text(SEED_SQL)
    return str(directory / "migrations"), str(directory / "seed.sql")


def assert_nothing_left(manager: IsolationManager) -> None:
    stats = manager.get_stats()
    assert stats["active_scope_count"] == 0 and stats["active_connection_count"] == 0
    assert manager.global_connection_registry == set()
    assert manager.metrics["scopes_created"] == manager.metrics["scopes_destroyed"]
    assert manager.metrics["cleanup_failures"] == 0 and manager.metrics["emergency_cleanups"] == 0


def play(manager: IsolationManager, schedule: tuple[list[list[Op]], list[int]], strategy: str, dialect: str) -> int:
    """Run one generated schedule (interleaved for clone, in turn otherwise); returns the most scopes alive."""
    generated, order = schedule
    if strategy == "clone":
        most = run_interleaved(manager, generated, order, dialect)
    else:
        run_in_turn(manager, generated, dialect)
        most = 1
    assert_nothing_left(manager)
    return most


# -- a. in process, SQLite ------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_sqlite_scopes_see_the_template_and_their_own_writes_only(
    strategy: str, sources: tuple[str, str], figures: Figures
) -> None:
    migrations, seed = sources
    manager = IsolationManager("sqlite://", migrations=migrations, seed=seed, strategy=strategy, env_vars=[])
    paths: set[Path] = set()
    most = [0]
    manager.scope_listeners.append(lambda scope: paths.add(Path(os.path.realpath(scope.database.url("dsn")))))

    @bounded(60)
    @given(schedules())
    def prove(schedule: tuple[list[list[Op]], list[int]]) -> None:
        most[0] = max(most[0], play(manager, schedule, strategy, "sqlite"))

    try:
        prove()
        # every database is a file in the backend's private directory, which holds the run's files only
        assert paths and all(path.is_absolute() for path in paths)
        [directory] = {path.parent for path in paths}
        left = run_entries(directory)
        template = [name for name in left if re.fullmatch(r"dbscope_tpl_[0-9a-f]+\.sqlite3", name)]
        assert len(template) == 1 and f"dbscope_{manager.run_id}.owner" in left, sorted(left)
        databases = left - {template[0], f"dbscope_{manager.run_id}.owner"}
        if strategy == "clone":  # a dropped clone's files are gone; only the pool's ready clones wait
            assert [database_files(path) for path in paths if database_files(path)] == []
            assert len(databases) <= manager.pool_size, sorted(databases)
            assert {path.name for path in paths}.isdisjoint(databases), sorted(databases)
        else:  # one database serves every scope, restored between them, until the manager closes
            assert databases == {path.name for path in paths} and len(databases) == 1, sorted(databases)
    finally:
        created = manager.metrics["scopes_created"]
        manager.close()
    assert_nothing_left(manager)
    still_there = [files for path in paths if (files := database_files(path))]
    assert still_there == [], f"a scope's database outlived the manager: {still_there[:3]}"
    assert not directory.exists(), f"close() left the backend's directory: {sorted(os.listdir(directory))}"
    figures.record(**{f"sqlite_{strategy}_scopes": created, f"sqlite_{strategy}_max_alive": most[0]})


def test_sqlite_file_clones_are_isolated_and_leave_only_the_template(
    sources: tuple[str, str], tmp_path: Path, figures: Figures
) -> None:
    migrations, seed = sources
    manager = IsolationManager(f"sqlite:///{tmp_path}/dbs", migrations=migrations, seed=seed, env_vars=[])

    @bounded(15)
    @given(schedules())
    def prove(schedule: tuple[list[list[Op]], list[int]]) -> None:
        generated, order = schedule
        run_interleaved(manager, generated, order, "sqlite")
        assert_nothing_left(manager)

    try:
        prove()
    finally:
        created = manager.metrics["scopes_created"]
        manager.close()
    left = sorted(p.name for p in (tmp_path / "dbs").iterdir() if p.name.startswith("dbscope_"))
    assert [n for n in left if not n.startswith("dbscope_tpl_")] == [], left
    figures.record(sqlite_file_clone_scopes=created)


# -- a. in process, PostgreSQL --------------------------------------------------------------


@dataclass
class PgServer:
    url: str
    conn: Any

    def databases(self, run_id: str) -> list[str]:
        pattern = f"dbscope\\_{run_id}\\_%"
        return [r[0] for r in self.conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern])]

    def connections(self, names: list[str]) -> int:
        row = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", [names]).fetchone()
        return int(row[0])


@pytest.fixture(scope="module")
def pg_server(pg_url: str) -> Iterator[PgServer]:
    import psycopg

    conn = psycopg.connect(pg_url, autocommit=True)
    yield PgServer(pg_url, conn)
    conn.close()


def assert_nothing_left_on_server(server: PgServer, manager: IsolationManager, names: set[str]) -> None:
    assert server.databases(manager.run_id) == [], "a database of this run is still on the server"
    assert server.connections(sorted(names)) == 0


@pytest.mark.parametrize(("strategy", "examples"), [("clone", 4), ("rollback", 15)])
def test_postgresql_scopes_see_the_template_and_their_own_writes_only(
    strategy: str, examples: int, sources: tuple[str, str], pg_server: PgServer, figures: Figures
) -> None:
    migrations, seed = sources
    manager = IsolationManager(pg_server.url, migrations=migrations, seed=seed, strategy=strategy, env_vars=[])
    names: set[str] = set()
    manager.scope_listeners.append(lambda scope: names.add(scope.database.name))

    @bounded(examples)
    @given(schedules(few_tests))
    def prove(schedule: tuple[list[list[Op]], list[int]]) -> None:
        play(manager, schedule, strategy, "postgresql")

    try:
        prove()
    finally:
        created = manager.metrics["scopes_created"]
        manager.close()
    assert names
    assert_nothing_left_on_server(pg_server, manager, names)
    figures.record(**{f"postgresql_{strategy}_scopes": created})


# -- b. generated suites under xdist ---------------------------------------------------------


def suite_seeds(count: int, offset: int) -> list[int]:
    """Fixed under CI (reproducible runs), random locally; DBSCOPE_ISOLATION_SEED replays one."""
    if os.environ.get("DBSCOPE_ISOLATION_SEED"):
        return [int(os.environ["DBSCOPE_ISOLATION_SEED"])]
    if CI:
        return [1000 + offset + i for i in range(count)]
    return [secrets.randbelow(10**9) for _ in range(count)]


def generate_suite(seed: int, count: int, record_dir: Path) -> str:
    """A test file of ``count`` tests with random writes, in a shuffled order, each checking the model."""
    rng = random.Random(seed)
    blocks = []
    for number in range(count):
        state = State()
        lines = [
            f"def test_w{number:02d}(db, dbscope_scope, dbscope):",
            f"    record({str(record_dir)!r}, 'w{number:02d}', dbscope_scope, dbscope)",
            "    assert look(db) == SEED, 'sees another test\\'s writes (or lost the seed)'",
        ]
        for _ in range(rng.randint(1, 6)):
            op = rng.choice(
                [
                    ("insert", rng.randint(1, 6), f"w{number}", rng.randint(0, 9)),
                    ("update", rng.randint(1, 3), rng.randint(3, 6), rng.randint(-3, 3)),
                    ("delete", rng.randint(1, 6), rng.randint(1, 6)),
                ]
            )
            for sql, args in apply(op, state):
                lines.append(f"    db.execute({sql!r}, {args!r})")
        expected = sorted((k, *v) for k, v in state.items.items())
        lines.append(f"    assert look(db) == {expected!r}")
        blocks.append("\n".join(lines))
    rng.shuffle(blocks)
    header = f"""\
        import json, os
        from pathlib import Path

        SEED = {sorted((k, *v) for k, v in SEED_ITEMS.items())!r}

        def look(db):
            return [tuple(r) for r in db.execute("SELECT id, name, qty FROM items ORDER BY id").rows]

        def record(directory, name, scope, manager):
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            Path(directory, name + ".json").write_text(json.dumps(
                {{"database": scope.database.name, "run": manager.run_id, "worker": worker}}
            ))
        """
    return textwrap.dedent(header) + "\n\n" + "\n\n\n".join(blocks) + "\n"


def run_suite(
    project: MakeProject, seed: int, ini: str, count: int = 14
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    pytester = project(ini="dbscope_seed = seed.sql\n" + ini, migrations={"0001_items.sql": SCHEMA})
    (pytester.path / "seed.sql").write_text(SEED_SQL)
    record_dir = pytester.mkdir("seen")
    pytester.makepyfile(test_generated=generate_suite(seed, count, record_dir))
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:randomly", "-p", "no:benchmark", "--dbscope-report=report.json"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == count and not outcomes.get("failed"), (
        f"suite seed {seed} (replay: DBSCOPE_ISOLATION_SEED={seed}):\n" + "\n".join(result.outlines[-40:])
    )
    report = json.loads((pytester.path / "report.json").read_text())
    seen = [json.loads(p.read_text()) for p in sorted(record_dir.iterdir())]
    assert len(seen) == count
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}, "both workers ran tests"
    for test in report["tests"]:
        assert not test["scope_leaked"] and test["connections_leaked"] == 0, test
    return result, report["tests"], seen


@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_generated_suites_under_xdist_see_only_the_seed_and_their_own_writes(
    project: MakeProject, strategy: str, figures: Figures
) -> None:
    (seed,) = suite_seeds(1, offset={"clone": 0, "reset": 1, "rollback": 2}[strategy])
    _, tests_report, seen = run_suite(project, seed, f"dbscope_strategy = {strategy}\n")
    databases = {(s["run"], s["database"]) for s in seen}  # a name is unique within its run (its process)
    if strategy == "clone":
        assert len(databases) == len(seen), "two tests shared a database"
    else:
        assert len(databases) == 2, "one database per worker"
    assert len(tests_report) == len(seen)
    figures.record(**{f"xdist_{strategy}_suite_seed": seed, f"xdist_{strategy}_tests": len(seen)})


def test_a_generated_suite_under_xdist_on_postgresql(
    project: MakeProject, pg_server: PgServer, figures: Figures
) -> None:
    (seed,) = suite_seeds(1, offset=3)
    _, _, seen = run_suite(project, seed, f"dbscope_url = {pg_server.url}\n")

    databases = sorted({s["database"] for s in seen})
    assert len(databases) == len(seen), "two tests shared a database"
    # Workers drop their last pooled clones in pytest_sessionfinish, which the controller
    # waits for: the lag recorded here should be 0. Waiting (bounded) would show it if not.
    runs = {s["run"] for s in seen}
    started = time.monotonic()
    wait_until(lambda: not any(pg_server.databases(run) for run in runs), 30, f"databases of runs {runs} dropped")
    lag = time.monotonic() - started
    assert pg_server.connections(databases) == 0
    figures.record(
        xdist_postgresql_suite_seed=seed, xdist_postgresql_tests=len(seen), xdist_postgresql_drop_lag_s=round(lag, 1)
    )


# -- c. a client returns what the driver returns -----------------------------------------------

SQLITE_T = "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB);\n"
PG_T = (
    "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "i BIGINT, f DOUBLE PRECISION, s TEXT, b BYTEA);\n"
)


@dataclass
class Param:
    name: str
    value: Any


Token = str | Param


def render(tokens: list[Token], style: str, named: bool) -> tuple[str, Any]:
    """SQL and args in a paramstyle: ``dbscope`` (``?``/``:name``, also sqlite3's) or ``psycopg``."""
    params = [t for t in tokens if isinstance(t, Param)]
    parts = []
    for token in tokens:
        if isinstance(token, Param):
            if style == "dbscope":
                parts.append(f":{token.name}" if named else "?")
            else:
                parts.append(f"%({token.name})s" if named else "%s")
        else:
            parts.append(token.replace("%", "%%") if style == "psycopg" and params else token)
    sql = "".join(parts)
    if not params:
        return sql, (() if style == "dbscope" else None)
    return sql, ({p.name: p.value for p in params} if named else [p.value for p in params])


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_int = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, -1, 2**31, 2**63, -(2**64)])
_float = st.floats(allow_nan=True, allow_infinity=True)
_blob = st.binary(max_size=16)
_literal = st.sampled_from(["'50%'", "'a?b'", "':name'", "'%s'", "'it''s ; fine'", "'::int'"])


@st.composite
def statements(draw: st.DrawFn) -> tuple[list[Token], bool]:
    kind = draw(st.sampled_from(["insert", "insert", "select", "update", "delete", "aggregate", "value"]))
    lit = draw(_literal)
    if kind == "insert":
        values = [
            Param("i", draw(_int | st.none())),
            Param("f", draw(_float | st.none())),
            Param("s", draw(_text | st.none())),
            Param("b", draw(_blob | st.none())),
        ]
        returning = draw(st.sampled_from(["", " RETURNING id, s"]))
        tokens: list[Token] = [
            "INSERT INTO t (i, f, s, b) VALUES (",
            values[0],
            ", ",
            values[1],
            ", ",
            values[2],
            ", ",
            values[3],
            ")" + returning,
        ]
    elif kind == "select":
        where: list[Token] = draw(
            st.sampled_from(
                [
                    ["i > ", Param("x", draw(_int))],
                    ["s = ", Param("x", draw(_text))],
                    [f"s <> {lit} AND b = ", Param("x", draw(_blob))],
                    ["f < ", Param("x", draw(_float))],
                    [f"s LIKE {lit} OR i IS NULL"],
                ]
            )
        )
        tokens = ["SELECT id, i, f, s, b, ", lit, " AS lit FROM t WHERE ", *where, " ORDER BY id"]
    elif kind == "update":
        tokens = ["UPDATE t SET s = ", Param("s", draw(_text)), f" || {lit} WHERE i < ", Param("x", draw(_int))]
    elif kind == "delete":
        tokens = ["DELETE FROM t WHERE id = ", Param("x", draw(st.integers(0, 6)))]
    elif kind == "aggregate":
        tokens = [f"SELECT count(*) AS n, max(id) AS top, {lit} AS lit FROM t"]
    else:
        tokens = ["SELECT ", Param("v", draw(_int | _text | _blob)), " AS v"]
    return tokens, draw(st.booleans())


def outcome(run: Callable[..., Any], *args: Any) -> Any:
    """What a statement gave: its result, or the type of error the driver raised."""
    try:
        return run(*args)
    except Exception as exc:  # compared, not swallowed: both sides must raise the same
        return ("error", type(exc).__name__, getattr(exc, "sqlstate", None))


def _plain(values: Any) -> str:
    return repr([tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row) for row in values])


def through_client(client: Any, sql: str, args: Any) -> Any:
    result = client.execute(sql, args)
    return (_plain(result.rows), result.columns, result.rows_affected, result.last_insert_rowid)


def through_driver(conn: Any, sql: str, args: Any) -> Any:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, args) if args is not None else cursor.execute(sql)
        columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
        rows = cursor.fetchall() if cursor.description else []
        return (_plain(rows), columns, max(cursor.rowcount or 0, 0), getattr(cursor, "lastrowid", None))
    finally:
        cursor.close()


def test_a_client_returns_what_sqlite3_returns_for_random_statements(tmp_path: Path, figures: Figures) -> None:
    (tmp_path / "t.sql").write_text(SQLITE_T)
    manager = IsolationManager("sqlite://", migrations=str(tmp_path / "t.sql"), env_vars=[])
    compared, failed = [0], [0]

    @bounded(120)
    @given(st.lists(statements(), min_size=1, max_size=8))
    def prove(generated: list[tuple[list[Token], bool]]) -> None:
        raw = sqlite3.connect(":memory:", isolation_level=None)
        raw.execute("PRAGMA foreign_keys = ON")
        raw.executescript(SQLITE_T)
        try:
            with manager.scope("client vs sqlite3") as scope:
                client = scope.client()
                for tokens, named in generated:
                    sql, args = render(tokens, "dbscope", named)
                    mine = outcome(through_client, client, sql, args)
                    theirs = outcome(through_driver, raw, sql, args)
                    assert mine == theirs, f"{sql!r} {args!r}"
                    compared[0] += 1
                    failed[0] += mine[0] == "error"
        finally:
            raw.close()

    try:
        prove()
    finally:
        manager.close()
    assert_nothing_left(manager)
    assert failed[0] < compared[0] / 2, "most statements failed: the comparison would prove little"
    figures.record(client_vs_sqlite3_statements=compared[0], client_vs_sqlite3_same_error=failed[0])


def test_a_client_returns_what_psycopg_returns_for_random_statements(
    tmp_path: Path, pg_server: PgServer, figures: Figures
) -> None:
    import psycopg

    (tmp_path / "t.sql").write_text("-- dbscope reliability: client vs psycopg\n" + PG_T)
    manager = IsolationManager(pg_server.url, migrations=str(tmp_path / "t.sql"), env_vars=[])
    names: set[str] = set()
    manager.scope_listeners.append(lambda scope: names.add(scope.database.name))
    compared, failed = [0], [0]

    # two clones of one template, one used through dbscope and one through psycopg alone;
    # both get every statement, so they stay identical from one example to the next
    with manager.scope("client") as mine_scope, manager.scope("driver") as their_scope:
        client = mine_scope.client()
        raw = psycopg.connect(their_scope.url("dsn"), autocommit=True)

        @bounded(40)
        @given(st.lists(statements(), min_size=1, max_size=10))
        def prove(generated: list[tuple[list[Token], bool]]) -> None:
            for tokens, named in generated:
                sql, args = render(tokens, "dbscope", named)
                raw_sql, raw_args = render(tokens, "psycopg", named)
                mine = outcome(through_client, client, sql, args)
                theirs = outcome(through_driver, raw, raw_sql, raw_args)
                assert mine == theirs, f"{sql!r} / {raw_sql!r} {args!r}"
                compared[0] += 1
                failed[0] += mine[0] == "error"

        try:
            prove()
        finally:
            raw.close()
    manager.close()
    assert_nothing_left(manager)
    assert_nothing_left_on_server(pg_server, manager, names)
    assert failed[0] < compared[0] / 2, "most statements failed: the comparison would prove little"
    figures.record(client_vs_psycopg_statements=compared[0], client_vs_psycopg_same_error=failed[0])
