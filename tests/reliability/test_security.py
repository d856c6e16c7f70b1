"""Security: SQL identifiers, passwords, what dbscope may drop, and which servers it may use.

* SQL text is never built by formatting values in (a static check of the source), and
  hostile test names and labels end up only as sanitized names or quoted identifiers;
* a password in the URL appears in no error, log line, report, repr or CLI output;
* dbscope drops only databases it created (prefix AND a valid owner record of its own);
  ``dbscope gc`` drops nothing without ``--yes``;
* a server that is not on this machine is refused before any connection is attempted.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from reliability.waiting import wait_until

import dbscope
from dbscope import BackendUnavailableError, ConfigError, IsolationManager
from dbscope.cli import main as cli_main

if TYPE_CHECKING:
    from reliability.figures import Figures

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from dbscope.backends import pg_owner  # noqa: E402
from dbscope.backends import postgresql as pg  # noqa: E402
from dbscope.backends.pg_cluster import ThrowawayCluster, find_bindir  # noqa: E402
from dbscope.backends.sqlite import SQLiteFileDatabase  # noqa: E402
from dbscope.migrations import MigrationSet, combined_fingerprint, load_migrations  # noqa: E402

SRC = Path(dbscope.__file__).resolve().parent
PASSWORD = "Pw-5ecr3t-zq9"
RUN_ARGS = ("-p", "no:benchmark", "-p", "no:cacheprovider")
USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
HOSTILE = ['x"; DROP DATABASE postgres; --', "'); DROP TABLE users; --", "../../etc/passwd?vfs=unix#", "Ünï 😀"]


def with_password(url: str, password: str = PASSWORD) -> str:
    scheme, _, rest = url.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    return f"{scheme}://{(userinfo or 'postgres').split(':', 1)[0]}:{password}@{hostpart}"


def unique_migrations(directory: Path) -> Path:
    """A migrations dir with a comment unique to the test: a template nobody else uses."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "0001_users.sql").write_text(f"-- {secrets.token_hex(8)}\n{USERS_SQL}")
    return directory


def template_name(migrations: Path) -> str:
    return f"dbscope_tpl_{combined_fingerprint(load_migrations(migrations), MigrationSet())}"


def databases(url: str, like: str = "%") -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [like])}


def drop_if_mine(url: str, *names: str, template: bool = False) -> None:
    """Drop databases this test made through dbscope (checked: prefix and owner record)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            pg_owner.drop_checked(conn, name, allow_template=template)


# -- identifiers: a static check of the source ------------------------------------------------

_EXECUTORS = {"execute", "executemany", "executescript"}
_SAFE_COMPOSERS = {"Identifier", "Literal", "Placeholder"}  # psycopg quotes these itself
#: sql.SQL() given a name, not a literal: each one reviewed, with the reason it is safe
_REVIEWED_SQL_NAMES = {
    ("backends/postgresql.py", "self.strategy"): "clone_strategy() returns only FILE_COPY or WAL_LOG",
}


def _module_constants(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name) and target.id.lstrip("_").isupper():
                names.add(target.id)
    return names


def _interpolations(expr: ast.AST, constants: set[str]) -> list[str]:
    """The parts of a SQL expression that format something other than a module constant in."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SAFE_COMPOSERS:
            return  # sql.Identifier(x) / sql.Literal(x): quoted by the driver
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue) and not (
                    isinstance(part.value, ast.Name) and part.value.id in constants
                ):
                    found.append(f"f-string formats {ast.unparse(part.value)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            if isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
                found.append(f"str.format({', '.join(ast.unparse(a) for a in node.args)})")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
            sides = (node.left, node.right)
            if any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides):
                others = [s for s in sides if not isinstance(s, ast.Constant)]
                if any(not (isinstance(s, ast.Name) and s.id in constants) for s in others):
                    found.append(f"{'%' if isinstance(node.op, ast.Mod) else '+'} with {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(expr)
    return found


def sql_building_problems(source: str, filename: str) -> list[str]:
    """Every execute()/sql.SQL() whose SQL formats a value in (locals assigned in the function too)."""
    tree = ast.parse(source)
    constants = _module_constants(tree)
    problems = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for function in [tree, *functions]:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            kind, sql_arg = node.func.attr, node.args[0]
            if kind not in _EXECUTORS and kind != "SQL":
                continue
            exprs = [sql_arg, *(assigned.get(sql_arg.id, []) if isinstance(sql_arg, ast.Name) else [])]
            for expr in exprs:
                for problem in _interpolations(expr, constants):
                    problems.append(f"{filename}:{node.lineno}: {kind}(): {problem}")
            if kind == "SQL" and not isinstance(sql_arg, ast.Constant):
                if not (isinstance(sql_arg, ast.Name) and sql_arg.id in constants):
                    if (filename, ast.unparse(sql_arg)) not in _REVIEWED_SQL_NAMES:
                        problems.append(f"{filename}:{node.lineno}: sql.SQL({ast.unparse(sql_arg)}) is not a literal")
    return sorted(set(problems))


def test_the_checker_finds_sql_built_by_formatting() -> None:
    bad = """
LIMIT = 5
def f(conn, name, sql):
    conn.execute(f"DROP DATABASE {name}")
    conn.execute("SELECT * FROM t WHERE a = '%s'" % name)
    conn.execute("SELECT {}".format(name))
    query = "DELETE FROM " + name
    conn.cursor().execute(query)
    conn.execute(sql.SQL(f"ALTER DATABASE {name}"))
    conn.execute(sql.SQL(name))
def fine(conn, name, sql):
    conn.execute(f"SELECT 1 LIMIT {LIMIT}")
    conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("SET x = {}").format(sql.Literal(f"{name}ms")))
    conn.execute("SELECT %s", [name])
"""
    problems = sql_building_problems(bad, "bad.py")
    lines = sorted({int(p.split(":")[1]) for p in problems})
    assert lines == [4, 5, 6, 8, 9, 10], problems


def test_no_sql_in_dbscope_is_built_by_formatting_values_in() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 15
    problems = [p for f in files for p in sql_building_problems(f.read_text(), f.relative_to(SRC).as_posix())]
    assert problems == []
    # the one reviewed exception holds: the strategy can only be one of two keywords
    with pytest.raises(ConfigError, match="DBSCOPE_PG_CLONE_STRATEGY"):
        pg.clone_strategy({"DBSCOPE_PG_CLONE_STRATEGY": "file_copy; DROP DATABASE postgres"})
    assert {pg.clone_strategy({"DBSCOPE_PG_CLONE_STRATEGY": v}) for v in ("file_copy", "WAL-LOG")} == {
        "FILE_COPY",
        "WAL_LOG",
    }


# -- identifiers: hostile names at run time --------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-memory", "sqlite-file", "postgresql"])
def test_hostile_test_names_and_labels_become_sanitized_names_only(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    migrations = unique_migrations(tmp_path / "migrations")
    url = {"sqlite-memory": "sqlite://", "sqlite-file": f"sqlite:///{tmp_path / 'dbs'}"}.get(backend)
    pg_url = request.getfixturevalue("pg_url") if url is None else None
    url = url or pg_url
    assert url is not None
    before = {p.name for p in tmp_path.parent.iterdir()}
    monkeypatch.setenv("PYTEST_XDIST_WORKER", HOSTILE[0])  # the worker id goes into every label
    names = []
    try:
        with IsolationManager(url, migrations=migrations) as manager:
            for test_name in HOSTILE[:2] if pg_url else HOSTILE:  # (each PostgreSQL clone costs a CREATE DATABASE)
                with manager.scope(test_name) as scope:
                    names.append(scope.database.name)
                    db = scope.client()
                    db.execute("INSERT INTO users (id, name) VALUES (1, ?)", [test_name])
                    assert db.execute("SELECT name FROM users").scalar() == test_name
                    assert db.execute("SELECT count(*) FROM users").scalar() == 1  # the table is still there
            for name in names:
                assert re.fullmatch(r"dbscope_[A-Za-z0-9_]+", name) and len(name.encode()) <= 63, name
            backend_object = next(iter(manager._backends.values()))  # noqa: SLF001 - the backend's own create()
            template = next(iter(manager._templates.values()))  # noqa: SLF001
            for label in HOSTILE:
                database = backend_object.create(template, label=label)
                try:
                    assert re.fullmatch(r"dbscope_[A-Za-z0-9_]+", database.name), database.name
                    if backend == "sqlite-file":
                        assert isinstance(database, SQLiteFileDatabase)
                        assert database.path.parent == (tmp_path / "dbs").resolve() and database.path.is_file()
                finally:
                    database.release()
                    database.drop()
        assert {p.name for p in tmp_path.parent.iterdir()} == before  # nothing written outside the test's dir
        if backend == "sqlite-file":
            assert sorted(p.name for p in (tmp_path / "dbs").iterdir()) == [f"{template_name(migrations)}.sqlite3"]
        if pg_url is not None:
            assert "postgres" in databases(pg_url)
            gone = lambda: not (databases(pg_url, "dbscope\\_%") & set(names))  # noqa: E731
            wait_until(gone, what="the scopes' databases dropped")
    finally:
        if pg_url is not None:
            drop_if_mine(pg_url, template_name(migrations), template=True)


# -- passwords -------------------------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Collect]:
    """Every record of dbscope's loggers at DEBUG, formatted (args included)."""
    handler = Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("dbscope", "dbscope.isolation", "dbscope.database")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    loggers[0].addHandler(handler)
    yield handler
    loggers[0].removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_a_password_appears_in_no_repr_log_line_or_error_of_a_real_run(
    pg_url: str, tmp_path: Path, debug_logs: Collect, figures: Figures
) -> None:
    url = with_password(pg_url)
    migrations = unique_migrations(tmp_path / "migrations")
    seen: list[str] = []
    kept = None
    try:
        with IsolationManager(url, migrations=migrations, close_timeout=2) as manager:
            with manager.scope("keeps its database") as scope:
                db = scope.client()
                db.execute("INSERT INTO users (id, name) VALUES (1, 'ana')")
                leak = psycopg.connect(scope.url("dsn"))  # a connection the test leaves open: a leak
                backend = next(iter(manager._backends.values()))  # noqa: SLF001
                assert isinstance(backend, pg.PostgreSQLBackend)
                seen += [repr(x) for x in (manager, manager.config, scope, db, scope.database, backend, backend.url)]
                seen += [str(manager.get_stats()), str(manager.metrics), repr(backend.address)]
                scope.kept = True
            kept = scope.database.name
            leak.close()
            with pytest.raises(dbscope.ScopeError) as unknown:
                manager.destroy_scope("test_0_nothing") or manager.get_scope("test_0_nothing")
            seen.append(str(unknown.value))
            with pytest.raises(dbscope.ClientClosedError) as closed:
                db.execute("SELECT 1")
            seen.append(str(closed.value))
        assert PASSWORD in scope.url()  # the URL handed to the app carries it: the check below is not vacuous
        assert any("kept the database" in line and "postgresql://postgres@" in line for line in debug_logs.lines)
        assert any("connection leak" in line for line in debug_logs.lines)
        assert len(debug_logs.lines) > 5
        for text in [*seen, *debug_logs.lines]:
            assert PASSWORD not in text, text
        figures.record(password_checked_log_lines=len(debug_logs.lines), password_checked_reprs=len(seen))
    finally:
        if kept is not None:
            drop_if_mine(pg_url, kept)
        drop_if_mine(pg_url, template_name(migrations), template=True)


def test_a_password_appears_nowhere_when_the_server_cannot_be_reached(
    tmp_path: Path, debug_logs: Collect, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    with pytest.raises(BackendUnavailableError) as caught:
        with IsolationManager(url) as manager, manager.scope("unreachable"):
            pass
    message = str(caught.value)
    assert f"cannot reach the PostgreSQL server at 127.0.0.1:{port}" in message and "***" in message
    outputs = [message, repr(caught.value.__cause__), *debug_logs.lines]

    for argv in (["doctor", "--url", url, "--clones", "1"], ["gc", "--url", url], ["gc", "--url", url, "--yes"]):
        code = cli_main(argv)
        out, err = capsys.readouterr()
        assert code == 1 and f"127.0.0.1:{port}" in out + err, (argv, out, err)
        outputs += [out, err]

    pytester.makepyfile(test_one="def test_one(db): pass\ndef test_two(db): pass\n")
    result = pytester.runpytest_subprocess(*RUN_ARGS, f"--dbscope-url={url}", "--dbscope-report=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test module is imported
    result.stderr.fnmatch_lines(
        [f"ERROR: dbscope: BackendUnavailableError: cannot reach the PostgreSQL server at 127.0.0.1:{port}*"]
    )
    assert not (pytester.path / "r.json").exists()  # no session ran: nothing to report
    outputs += [*result.outlines, *result.errlines]
    for text in outputs:
        assert PASSWORD not in text, text


def test_a_password_appears_nowhere_in_a_plugin_run_its_reports_and_the_cli(
    pg_url: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = with_password(pg_url)
    migrations = unique_migrations(pytester.path / "migrations")
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = migrations\n")
    pytester.makepyfile(
        test_app="""
        import psycopg

        LEAKED = []

        def test_reprs(db, dbscope_scope, dbscope):
            backend = next(iter(dbscope._backends.values()))
            with open("reprs.txt", "w") as f:
                for obj in (dbscope, dbscope.config, dbscope_scope, db, dbscope_scope.database, backend):
                    f.write(repr(obj) + "\\n")

        def test_leaks(db_url, dbscope_scope):
            LEAKED.append(psycopg.connect(dbscope_scope.url("dsn")))

        def test_fails_and_is_kept(db):
            db.execute("INSERT INTO users (id, name) VALUES (1, 'ana')")
            assert False, "on purpose"
        """
    )
    monkeypatch.setenv("DBSCOPE_URL", url)
    monkeypatch.setenv("DBSCOPE_DEBUG", "isolation,database")
    result = pytester.runpytest_subprocess(
        *RUN_ARGS, "--dbscope-keep-failed", "--dbscope-report=r.json", "--dbscope-html=r.html", "-rA"
    )
    kept = re.findall(r"test_fails_and_is_kept: \S+/(dbscope_\w+)", "\n".join(result.outlines))
    try:
        result.assert_outcomes(passed=2, failed=1)
        assert len(kept) == 1
        report = json.loads((pytester.path / "r.json").read_text())
        assert report["settings"]["url"] == with_password(pg_url, "***")
        html = (pytester.path / "r.html").read_text()
        reprs = (pytester.path / "reprs.txt").read_text()
        assert "***" in reprs and "dbscope.isolation DEBUG" in "\n".join(result.errlines)
        assert "connection leak" in "\n".join(result.outlines + result.errlines)
        monkeypatch.delenv("DBSCOPE_DEBUG")
        monkeypatch.chdir(pytester.path)
        cli: list[str] = []
        for argv in (["doctor", "--clones", "2"], ["gc"]):
            code = cli_main(argv)
            out, err = capsys.readouterr()
            assert code == 0, (argv, out, err)
            cli += [out, err]
        assert "PostgreSQL server (postgresql://postgres:***@" in cli[0]
        for text in [*result.outlines, *result.errlines, json.dumps(report), html, reprs, *cli]:
            assert PASSWORD not in text, text
    finally:
        drop_if_mine(pg_url, *kept)
        drop_if_mine(pg_url, template_name(migrations), template=True)


# -- what dbscope may drop ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    """A throwaway cluster of this module's own: gc --yes may drop anything dead on it."""
    find_bindir()
    with ThrowawayCluster() as running:
        yield running


def test_dbscope_never_drops_a_database_it_did_not_create(
    cluster: ThrowawayCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = cluster.url
    tag = secrets.token_hex(3)
    foreign_record = pg_owner.OwnerRecord("clone", f"other{tag}", f"other{tag}", "ci-runner-9", "boot", 4242)
    made = {
        f"sectest_{tag}": None,  # no prefix
        f"dbscope_sectest_{tag}_bare": None,  # prefix, no owner record
        f"dbscope_sectest_{tag}_forged": '{"dbscope": 1, "kind": "everything", "run": "x"}',  # not a record
        f"dbscope_sectest_{tag}_text": "made by hand",
        f"dbscope_sectest_{tag}_foreign": foreign_record.to_json(),  # a live run on another machine
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for name, comment in made.items():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if comment is not None:
                conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
    try:
        with pg.PostgreSQLBackend(url, sweep=True) as backend:
            reasons = {
                f"sectest_{tag}": "its name does not start with 'dbscope_'",
                f"dbscope_sectest_{tag}_bare": "it has no dbscope owner record",
                f"dbscope_sectest_{tag}_forged": "it has no dbscope owner record",
                f"dbscope_sectest_{tag}_text": "it has no dbscope owner record",
                f"dbscope_sectest_{tag}_foreign": f"it belongs to dbscope run other{tag}, not to this one",
            }
            for name, reason in reasons.items():
                with pytest.raises(BackendUnavailableError, match=f"refusing to drop database '{name}': {reason}"):
                    backend.drop_database(name)
            with pytest.raises(BackendUnavailableError, match="does not start with 'dbscope_'"):
                backend.drop_database("postgres")
            assert backend.wait_for_drops(20)
        listed = {item.name: item for item in pg.collect_garbage(url, dry_run=False, templates=True, kept=True)}
        monkeypatch.chdir(tmp_path)
        assert cli_main(["gc", "--url", url, "--yes", "--templates"]) == 0
        out = capsys.readouterr().out
        assert made.keys() <= databases(url)  # all of them are still there
        assert f"sectest_{tag}" not in listed  # not even listed without the prefix
        for name in list(made)[1:]:
            assert listed[name].action == "keep" and f"keep {name}: " in out, (listed.get(name), out)
        assert "waiting for its heartbeat" in listed[f"dbscope_sectest_{tag}_foreign"].reason
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in made:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    assert not (made.keys() & databases(url))


def test_gc_without_yes_only_lists_and_with_yes_drops_only_dead_runs_databases(
    cluster: ThrowawayCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = cluster.url
    monkeypatch.chdir(tmp_path)
    migrations = load_migrations(unique_migrations(tmp_path / "migrations"))
    with pg.PostgreSQLBackend(url, sweep=False) as backend:
        template = backend.template(migrations, MigrationSet())
        ghost = replace(backend.owner, run=f"dead{secrets.token_hex(2)}", pid=2**22 + 12345)  # no such pid
        dead = [backend.create(template, label=f"dead_{i}", owner=ghost) for i in range(2)]
        for database in dead:
            database.release()
        live = backend.create(template, label="live")
        everything = databases(url, "dbscope\\_%")
        for argv in (["gc", "--url", url], ["gc", "--url", url, "--dry-run"]):
            assert cli_main(argv) == 0
            out = capsys.readouterr().out
            assert databases(url, "dbscope\\_%") == everything  # a dry run drops nothing
            for database in dead:
                assert f"would drop {database.name}: clone: run {ghost.run}" in out
            assert f"keep {live.name}: clone: run {backend.run_id}" in out
            assert out.rstrip().endswith(
                "2 item(s) would be dropped; nothing was dropped: run again with --yes to drop them"
            )
        assert cli_main(["gc", "--url", url, "--yes"]) == 0
        out = capsys.readouterr().out
        assert databases(url, "dbscope\\_%") == everything - {d.name for d in dead}
        assert out.count("dropped dbscope_") == 2 and live.name in databases(url) and template.name in databases(url)
        live.drop()
        assert backend.wait_for_drops(20)
    assert not databases(url, f"dbscope\\_{backend.run_id}\\_%")


# -- which servers ---------------------------------------------------------------------------------

REMOTE = ["db.example.com", "localhost.evil.com", "127.0.0.1.nip.io", "evil.localhost", "10.255.255.1", "[2001:db8::1]"]
LOCAL = ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "%2Fvar%2Frun%2Fpostgresql"]


@pytest.mark.parametrize("host", REMOTE)
def test_a_remote_server_is_refused_before_any_connection_by_library_and_gc(
    host: str, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    url = f"postgresql://deploy:{PASSWORD}@{host}:5432/prod"
    started = time.perf_counter()
    with pytest.raises(BackendUnavailableError) as caught:
        with IsolationManager(url) as manager, manager.scope("must not run"):
            pass
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert message.startswith(f"refusing to use the PostgreSQL server at {host.strip('[]')}")
    assert "dbscope_allow_remote = true" in message and PASSWORD not in message
    assert caught.value.__cause__ is None  # no DNS or connection error underneath: none was attempted
    assert elapsed < 5, elapsed  # an unroutable address would take connect_timeout (10 s) to fail
    assert cli_main(["gc", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "refusing to use the PostgreSQL server" in err and "DBSCOPE_ALLOW_REMOTE" in err
    assert PASSWORD not in err
    figures.record(remote_refusal_ms=round(elapsed * 1000, 1))


@pytest.mark.parametrize("host", LOCAL)
def test_local_servers_are_not_refused(host: str) -> None:
    from dbscope.backends.pg_connect import check_local, server_address
    from dbscope.urls import parse_backend_url

    check_local(server_address(parse_backend_url(f"postgresql://u@{host}:5432/db")), allow_remote=False)


def test_a_remote_server_is_refused_under_pytest_and_tried_only_when_allowed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_one="def test_one(db): pass\n")
    monkeypatch.setenv("DBSCOPE_URL", f"postgresql://deploy:{PASSWORD}@db.example.com/prod")
    refused = pytester.runpytest_subprocess(*RUN_ARGS)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR  # before any test module is imported
    refused.stderr.fnmatch_lines(["*refusing to use the PostgreSQL server at db.example.com*dbscope_allow_remote*"])
    with pytest.raises(BackendUnavailableError, match="cannot reach the PostgreSQL server at db.example.com"):
        with IsolationManager(os.environ["DBSCOPE_URL"], allow_remote=True) as manager, manager.scope("tried"):
            pass  # allowed, it is tried: and fails here, where the name does not resolve
    for text in refused.outlines + refused.errlines:
        assert PASSWORD not in text
