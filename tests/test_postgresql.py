"""The PostgreSQL backend: templates, clones, owner records, gc, leaks, errors, restore.

Runs against the server of the ``pg_url`` fixture (tests/pgsupport.py). Every database,
template and role a test creates is removed again; dbscope's registry database
(``dbscope_registry``) is infrastructure and stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dbscope import BackendUnavailableError, ConfigError, IsolationManager, MigrationError
from dbscope.backends import open_backend
from dbscope.backends.pg_connect import Budget, is_local_host, server_address
from dbscope.backends.pg_dialect import translate
from dbscope.migrations import MigrationSet, combined_fingerprint, load_migrations
from dbscope.urls import parse_backend_url

psycopg = pytest.importorskip("psycopg")

# Both import psycopg themselves, so only after the importorskip above.
from dbscope.backends import pg_owner  # noqa: E402
from dbscope.backends import postgresql as pg  # noqa: E402

SCHEMA = Path(__file__).resolve().parent.parent / "benchmarks" / "schema" / "postgresql"
USERS_SQL = "CREATE TABLE users (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
NO_SEED = MigrationSet()


# -- helpers -----------------------------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    scheme, _, rest = url.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] or "postgres"
    return f"{scheme}://{user}:{password}@{hostpart}"


def with_port(url: str, port: int) -> str:
    address = server_address(parse_backend_url(url))
    return f"postgresql://{address.user}@127.0.0.1:{port}/postgres"


def unique_migrations(tmp_path: Path, *extra: str) -> MigrationSet:
    """A migration set with a fingerprint no other test (or run) has: a fresh template."""
    directory = tmp_path / f"migrations_{secrets.token_hex(3)}"
    directory.mkdir()
    (directory / "0001_users.sql").write_text(f"-- {secrets.token_hex(8)}\n{USERS_SQL}")
    for index, sql in enumerate(extra, start=2):
        (directory / f"{index:04d}_more.sql").write_text(sql)
    return load_migrations(directory)


class Server:
    """A raw autocommit connection to the maintenance database, for looking behind dbscope's back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def databases(self, like: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", [like.replace("_", "\\_")]
        ).fetchall()
        return [name for (name,) in rows]

    def exists(self, name: str) -> bool:
        return bool(self.conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())

    def drop_template(self, name: str) -> None:
        """Drop a template a test built, unless a live run (another session on this server) uses it."""
        registry = psycopg.connect(pg_owner_url(self.url), autocommit=True)
        try:
            items = pg_owner.plan_garbage(self.conn, registry, templates=True)
            if any(item.name == name and item.action == "drop" for item in items):
                with contextlib.suppress(BackendUnavailableError):  # a run took it up meanwhile
                    pg_owner.drop_unused_template(self.conn, registry, name, stale_after_s=pg_owner.STALE_AFTER_S)
        finally:
            registry.close()

    def close(self) -> None:
        self.conn.close()


def pg_owner_url(url: str) -> str:
    return server_address(parse_backend_url(url)).conninfo(pg_owner.REGISTRY_DB)


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[Server]:
    server = Server(pg_url)
    yield server
    server.close()


@pytest.fixture
def backends(pg_url: str, server: Server) -> Iterator[Callable[..., pg.PostgreSQLBackend]]:
    """Open backends; each is closed, its drops awaited and the templates it built dropped."""
    opened: list[pg.PostgreSQLBackend] = []

    def open_(url: str | None = None, **kwargs: Any) -> pg.PostgreSQLBackend:
        kwargs.setdefault("sweep", False)
        backend = pg.PostgreSQLBackend(url or pg_url, **kwargs)
        opened.append(backend)
        return backend

    yield open_
    built: set[str] = set()
    for backend in opened:
        built |= {t.name for t in backend._templates.values() if t.built}
        backend.close()
    for backend in opened:
        assert server.databases(f"dbscope_{backend.run_id}_%") == [], "a clone outlived its backend"
    for name in built:
        server.drop_template(name)


@pytest.fixture(scope="module")
def bench(pg_url: str) -> Iterator[tuple[pg.PostgreSQLBackend, pg.PostgreSQLTemplate]]:
    """The benchmark schema (30 tables, triggers, seed) as a template, shared by this module."""
    backend = pg.PostgreSQLBackend(pg_url, sweep=False)
    template = backend.template(load_migrations(SCHEMA / "migrations"), load_migrations(SCHEMA / "seed.sql"))
    yield backend, template
    backend.close()
    server = Server(pg_url)
    try:
        server.drop_template(template.name)  # unless a live run (another session) uses it
    finally:
        server.close()


@pytest.fixture(scope="module")
def manager(pg_url: str, bench: Any, server: Server) -> Iterator[IsolationManager]:
    """An IsolationManager on the benchmark schema, as a user would make one."""
    manager = IsolationManager(
        pg_url, migrations=str(SCHEMA / "migrations"), seed=str(SCHEMA / "seed.sql"), env_vars=["DATABASE_URL"]
    )
    yield manager
    manager.close()
    assert server.databases(f"dbscope_{manager.run_id}_%") == []


def table_counts(conn: Any) -> dict[str, int]:
    tables = [
        name
        for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    ]
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    return int(done.stdout)


# -- the dialect (no server) --------------------------------------------------------------------

TRANSLATIONS = [
    ("SELECT ? + ?", (1, 2), "SELECT %s + %s"),
    ("SELECT :a, :b_2", {"a": 1, "b_2": 2}, "SELECT %(a)s, %(b_2)s"),
    ("SELECT '?', ? -- what?\n", (1,), "SELECT '?', %s -- what?\n"),
    ("SELECT 'it''s ?' || ?", ("x",), "SELECT 'it''s ?' || %s"),
    ("SELECT E'\\' ?' || ?", ("x",), "SELECT E'\\' ?' || %s"),
    ('SELECT "odd?col" FROM t WHERE a = ?', (1,), 'SELECT "odd?col" FROM t WHERE a = %s'),
    ("SELECT :n::int, '1'::text", {"n": "5"}, "SELECT %(n)s::int, '1'::text"),
    ("SELECT ?::int /* ? /* nested ? */ ? */", (1,), "SELECT %s::int /* ? /* nested ? */ ? */"),
    ("SELECT $$ ? :x $$, $tag$ ?' $tag$, ?", (1,), "SELECT $$ ? :x $$, $tag$ ?' $tag$, %s"),
    ("SELECT 5 % ?, '100%'", (2,), "SELECT 5 %% %s, '100%%'"),
    ("SELECT a[1:2], ?", (1,), "SELECT a[1:2], %s"),
    ("SELECT '{}'::jsonb ? 'k', :v", {"v": 1}, "SELECT '{}'::jsonb ? 'k', %(v)s"),
    ("SELECT ':x', :x", {"x": 1}, "SELECT ':x', %(x)s"),
]


@pytest.mark.parametrize(("sql", "args", "expected"), TRANSLATIONS)
def test_placeholders_are_translated_outside_quotes_comments_and_casts(sql: str, args: Any, expected: str) -> None:
    assert translate(sql, args) == (expected, args)


@pytest.mark.parametrize("args", [(), [], {}, None])
def test_without_arguments_the_sql_goes_out_untouched_and_percent_stays_literal(args: Any) -> None:
    assert translate("SELECT '100%', 5 % 2, '?'", args) == ("SELECT '100%', 5 % 2, '?'", None)


def test_urls_in_every_format_quote_the_password_and_masks_it_in_repr() -> None:
    address = server_address(parse_backend_url("postgresql://ana:p%40ss:w@localhost:5433/postgres?sslmode=disable"))
    assert (
        address.url("dbscope_x_1") == "postgresql+psycopg://ana:p%40ss%3Aw@localhost:5433/dbscope_x_1?sslmode=disable"
    )
    assert address.url("dbscope_x_1", "async") == "postgresql+asyncpg://ana:p%40ss%3Aw@localhost:5433/dbscope_x_1"
    assert address.url("dbscope_x_1", "dsn").startswith("postgresql://ana:p%40ss%3Aw@localhost:5433/dbscope_x_1")
    assert "p@ss" not in repr(address) and "p%40ss" not in repr(address)
    socket_dir = server_address(parse_backend_url("postgresql://ana@%2Fvar%2Frun%2Fpostgresql/postgres"))
    assert socket_dir.url("d", "dsn") == "postgresql://ana@/d?host=/var/run/postgresql"
    with pytest.raises(ConfigError, match="unknown URL format 'jdbc'"):
        address.url("d", "jdbc")


def test_local_hosts_are_recognised() -> None:
    for host in ("localhost", "127.0.0.1", "127.3.4.5", "::1", "[::1]", "/var/run/postgresql", ""):
        assert is_local_host(host), host
    assert is_local_host(socket.gethostname()) is not False
    assert is_local_host("203.0.113.7") is False  # TEST-NET-3


def test_clone_names_are_sanitised_and_fit_in_63_bytes() -> None:
    assert pg.clone_name("ab12cd34", "gw0_7") == "dbscope_ab12cd34_gw0_7"
    assert pg.clone_name("ab12cd34", "Tests/Ünïcode label!") == "dbscope_ab12cd34_tests_n_code_label"
    long_a, long_b = pg.clone_name("r", "x" * 100 + "a"), pg.clone_name("r", "x" * 100 + "b")
    assert len(long_a.encode()) <= 63 and long_a != long_b


def test_an_invalid_clone_strategy_names_the_variable() -> None:
    assert pg.clone_strategy({"DBSCOPE_PG_CLONE_STRATEGY": "wal-log"}) == "WAL_LOG"
    assert pg.clone_strategy({}) == pg.DEFAULT_CLONE_STRATEGY
    with pytest.raises(ConfigError, match="DBSCOPE_PG_CLONE_STRATEGY = 'fast'.*file_copy or wal_log"):
        pg.clone_strategy({"DBSCOPE_PG_CLONE_STRATEGY": "fast"})


def test_a_remote_server_is_refused_with_the_way_to_allow_it() -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        pg.PostgreSQLBackend("postgresql://postgres:s3cret@203.0.113.7:5432/postgres")
    message = str(caught.value)
    assert "dbscope_allow_remote = true" in message and "production" in message
    assert "s3cret" not in message and "***" in message


def test_postgresql_proc_without_the_cluster_module_is_a_clear_error() -> None:
    import importlib.util

    if importlib.util.find_spec("dbscope.backends.pg_cluster") is not None:
        return  # the throwaway-cluster backend exists: its own tests cover it
    with pytest.raises(BackendUnavailableError, match="postgresql\\+proc"):
        open_backend(parse_backend_url("postgresql+proc://"), run_id="x")


# -- connection errors ---------------------------------------------------------------------------


def test_an_unreachable_server_names_host_and_port_and_how_to_start_one(pg_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = with_password(with_port(pg_url, port), "hunter2")
    with pytest.raises(BackendUnavailableError) as caught:
        pg.PostgreSQLBackend(url)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "pg_ctlcluster 15 main start" in message
    assert "postgresql+proc://" in message and "hunter2" not in message
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def _fake_server_rejecting_passwords() -> tuple[socket.socket, threading.Thread]:
    """A PostgreSQL look-alike that asks for a password and rejects it (SQLSTATE 28P01)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def read_exact(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    while True:  # SSLRequest / GSSENCRequest come first: refuse them
                        length, code = struct.unpack("!ii", read_exact(conn, 8))
                        read_exact(conn, length - 8)
                        if code in (80877103, 80877104):
                            conn.sendall(b"N")
                            continue
                        break
                    conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # cleartext password, please
                    kind = read_exact(conn, 1)
                    (length,) = struct.unpack("!i", read_exact(conn, 4))
                    read_exact(conn, length - 4)
                    assert kind == b"p"
                    fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "postgres"\0\0'
                    conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                except (ConnectionError, OSError, AssertionError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_wrong_password_says_so_without_showing_it() -> None:
    listener, thread = _fake_server_rejecting_passwords()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            pg.PostgreSQLBackend(f"postgresql://postgres:wr0ngpass@127.0.0.1:{port}/postgres?sslmode=disable")
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the server thread
        listener.close()
        thread.join(2)
    message = str(caught.value)
    assert "rejected the password of role 'postgres'" in message and f"127.0.0.1:{port}" in message
    assert "wr0ngpass" not in message and "PGPASSWORD" in message


def test_a_role_without_createdb_is_told_what_to_run(pg_url: str, server: Server) -> None:
    role = "dbscope_test_nocreatedb"
    server.conn.execute(f"DROP ROLE IF EXISTS {role}")
    server.conn.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD 'pw-of-role'")
    try:
        address = server_address(parse_backend_url(pg_url))
        url = f"postgresql://{role}:pw-of-role@{address.host}:{address.port}/postgres"
        with pytest.raises(BackendUnavailableError) as caught:
            pg.PostgreSQLBackend(url)
        message = str(caught.value)
        assert f"role '{role}'" in message and f'ALTER ROLE "{role}" CREATEDB;' in message
        assert "pw-of-role" not in message
    finally:
        server.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        server.conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_an_exhausted_connection_budget_says_who_uses_the_connections(
    backends: Callable[..., pg.PostgreSQLBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    full = Budget(max_connections=20, reserved=3, in_use=16, users=(("app / gunicorn", 12), ("postgres / psql", 4)))
    monkeypatch.setattr(pg, "connection_budget", lambda conn: full)
    with pytest.raises(BackendUnavailableError) as caught:
        backends()
    message = str(caught.value)
    assert "16 of max_connections = 20 are in use, 3 reserved for superusers" in message
    assert "app / gunicorn: 12" in message and "dbscope needs 2 more" in message


def test_the_pool_size_leaves_headroom(
    backends: Callable[..., pg.PostgreSQLBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert 0 <= backends().pool_size <= pg.DEFAULT_POOL_SIZE
    monkeypatch.setattr(pg, "connection_budget", lambda conn: Budget(100, 3, 10, ()))
    assert backends().pool_size == 2
    monkeypatch.setattr(pg, "connection_budget", lambda conn: Budget(20, 3, 12, ()))
    assert backends().pool_size == 0  # 5 free: 3 headroom, 2 for the running test


# -- templates ------------------------------------------------------------------------------------


BUILD_SCRIPT = textwrap.dedent(
    """
    import sys, time, pathlib
    from dbscope.backends.postgresql import PostgreSQLBackend
    from dbscope.migrations import load_migrations

    url, migrations, counter, go = sys.argv[1:5]

    def seed(conn):
        with open(counter, "a") as f:
            f.write("built\\n")
        conn.execute("INSERT INTO users (name) VALUES ('seeded')")
        time.sleep(0.3)  # a slow build: the others must wait for it, not build too

    while not pathlib.Path(go).exists():
        time.sleep(0.005)
    backend = PostgreSQLBackend(url, sweep=False)
    try:
        template = backend.template(load_migrations(migrations), load_migrations(seed))
        print(template.name, template.built)
    finally:
        backend.close()
    """
)


def test_processes_building_the_same_template_at_once_build_it_once(
    pg_url: str, server: Server, tmp_path: Path
) -> None:
    migrations = unique_migrations(tmp_path)
    counter, go = tmp_path / "builds.txt", tmp_path / "go"
    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT)
    children = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, migrations.spec or "", str(counter), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(0.5)  # let them import and wait at the start line
    go.touch()
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], [err for _, err in outputs]
    names = {out.split()[0] for out, _ in outputs}
    built = sorted(out.split()[1] for out, _ in outputs)
    try:
        assert counter.read_text() == "built\n"
        assert built == ["False", "False", "True"]
        assert len(names) == 1
        (name,) = names
        assert server.exists(name)
        assert server.databases(f"{name}_b%") == []  # no temporary build database left
    finally:
        for name in names:
            server.drop_template(name)


def counting_seed(calls: list[int]) -> MigrationSet:
    def seed(conn: Any) -> None:
        calls.append(1)
        conn.execute("INSERT INTO users (name) VALUES ('seeded')")

    return load_migrations(seed)


def test_a_template_is_reused_by_later_runs_and_rebuilt_on_request(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server
) -> None:
    migrations = unique_migrations(tmp_path)
    calls: list[int] = []
    seed = counting_seed(calls)

    first = backends().template(migrations, seed)
    later = backends().template(migrations, seed)
    assert (first.name, first.built, later.built, calls) == (later.name, True, False, [1])

    sibling = backends(session=f"s-{secrets.token_hex(2)}")  # e.g. another xdist worker of one run
    rebuilt = sibling.template(migrations, seed, rebuild=True)
    assert rebuilt.built and calls == [1, 1]
    same_session = backends(session=sibling.session).template(migrations, seed, rebuild=True)
    assert not same_session.built and calls == [1, 1]  # --dbscope-rebuild rebuilds once per session

    info = server.conn.execute(
        "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s", [first.name]
    ).fetchone()
    assert info == (True, False)


def test_a_failing_migration_leaves_no_template_and_no_temporary_database(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server
) -> None:
    migrations = unique_migrations(tmp_path, "CREATE TABLE ok (id int);\nSELECT no_such_function();\n")
    backend = backends()
    with pytest.raises(MigrationError, match=r"0002_more.sql, line 2 \(statement 2\)") as caught:
        backend.template(migrations, NO_SEED)
    assert caught.value.source is not None and caught.value.source.endswith("0002_more.sql")
    fingerprint = combined_fingerprint(migrations, NO_SEED)
    assert server.databases(f"dbscope_tpl_{fingerprint}%") == []


# -- clones, through the manager and the backend ------------------------------------------------------


def test_scopes_get_isolated_databases_with_the_benchmark_schema(manager: IsolationManager) -> None:
    with manager.scope("first") as first:
        db = first.client()
        seeded = db.execute("SELECT count(*) FROM users").scalar()
        assert seeded > 0
        db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Ana", "ana@example.com"])
        with db.transaction() as tx:
            tx.execute(
                "UPDATE users SET name = :name WHERE email = :email", {"name": "Ana B", "email": "ana@example.com"}
            )
        assert db.execute("SELECT name FROM users WHERE email LIKE ?", ["ana@%"]).scalar() == "Ana B"
        assert os.environ["DATABASE_URL"] == first.url() and first.url().startswith("postgresql+psycopg://")
        first_name = first.database.name
    with manager.scope("second") as second:
        db = second.client()
        assert second.database.name != first_name
        assert db.execute("SELECT count(*) FROM users").scalar() == seeded
        assert db.execute("SELECT count(*) FROM users WHERE email = 'ana@example.com'").scalar() == 0
        row = db.execute("SELECT ?::int + 1 AS n, '?' AS q, '100%' AS pct", ["41"]).rows[0]
        assert (row["n"], row["q"], row["pct"]) == (42, "?", "100%")
        assert db.execute("SELECT '50%' AS pct").scalar() == "50%"


def test_urls_work_with_sqlalchemy_sync_and_async_and_libpq(bench: Any) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    backend, template = bench
    database = backend.create(template, label="urls")
    try:
        engine = sa.create_engine(database.url())
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == database.name
        engine.dispose()

        async def ask() -> str:
            engine = create_async_engine(database.url("async"))
            async with engine.connect() as conn:
                name = (await conn.execute(sa.text("SELECT current_database()"))).scalar()
            await engine.dispose()
            return str(name)

        assert asyncio.run(ask()) == database.name
        with psycopg.connect(database.url("dsn")) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == database.name
        assert len(database.foreign_connections()) == 0
    finally:
        database.drop()


def test_clones_are_isolated_and_connect_gives_normal_or_autocommit_connections(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path
) -> None:
    backend = backends()
    template = backend.template(unique_migrations(tmp_path), NO_SEED)
    one, two = backend.create(template, label="one"), backend.create(template, label="two")
    try:
        with one.connect() as conn:  # a normal psycopg connection: a transaction until commit
            conn.execute("INSERT INTO users (name) VALUES ('only in one')")
            assert conn.info.transaction_status != 0
        auto = two.connect(autocommit=True)
        assert auto.autocommit
        assert auto.execute("SELECT count(*) FROM users").fetchone() == (0,)
        auto.close()
        with one.connect() as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("only in one",)]
    finally:
        one.drop()
        two.drop()
    assert backend.wait_for_drops(30)


def test_a_connection_left_open_is_a_leak_and_the_database_is_still_dropped(
    manager: IsolationManager, server: Server, pg_url: str
) -> None:
    with manager.scope("clean") as scope:
        scope.client().execute("SELECT 1")
        scope.connect().execute("SELECT 1")  # dbscope's own: closed for the test, no leak
    assert scope.leaked_connections == 0
    leaked = []
    try:
        with manager.scope("leaky") as scope:
            leaked.append(psycopg.connect(scope.url("dsn")))
            name = scope.database.name
        assert scope.leaked_connections == 1
        backend = manager._backends[pg_url]
        assert isinstance(backend, pg.PostgreSQLBackend)
        assert backend.wait_for_drops(30)
        assert not server.exists(name)  # dropped WITH (FORCE) all the same
        assert leaked[0].closed or leaked[0].broken or _is_dead(leaked[0])
    finally:
        for conn in leaked:
            conn.close()


def _is_dead(conn: Any) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_drop_refuses_databases_dbscope_did_not_create(
    backends: Callable[..., pg.PostgreSQLBackend], server: Server
) -> None:
    backend = backends()
    with pytest.raises(BackendUnavailableError, match="refusing to drop database 'postgres'.*does not start with"):
        backend.drop_database("postgres")
    impostor = f"dbscope_zz_{secrets.token_hex(3)}"
    server.conn.execute(f'CREATE DATABASE "{impostor}"')
    try:
        with pytest.raises(BackendUnavailableError, match="no dbscope owner record"):
            backend.drop_database(impostor)
        server.conn.execute(f"COMMENT ON DATABASE \"{impostor}\" IS 'hand made'")
        with pytest.raises(BackendUnavailableError, match="no dbscope owner record"):
            backend.drop_database(impostor)
        assert server.exists(impostor) and server.exists("postgres")
        items = {item.name: item for item in pg.collect_garbage(server.url, dry_run=False)}
        assert items[impostor].action == "keep" and server.exists(impostor)
    finally:
        server.conn.execute(f'DROP DATABASE IF EXISTS "{impostor}"')


# -- owner records and garbage collection ------------------------------------------------------------


def test_gc_drops_what_dead_runs_left_and_never_a_live_runs_databases(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server, pg_url: str
) -> None:
    backend = backends()
    template = backend.template(unique_migrations(tmp_path), NO_SEED)
    ghost = replace(backend.owner, run=f"dead{secrets.token_hex(2)}", pid=dead_pid())
    live = backend.create(template, label="live")
    try:
        record = pg_owner.OwnerRecord.from_comment(
            server.conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [live.name]
            ).fetchone()[0]
        )
        assert record is not None and (record.kind, record.run, record.pid) == ("clone", backend.run_id, os.getpid())

        # A dead run's database is everyone's to sweep: a run starting on this server meanwhile (the
        # suite's other workers start many) may drop it before gc lists it. Then it is gone, as it
        # should be, and a new orphan is made for gc to find.
        for attempt in range(5):
            orphan = backend.create(template, label=f"orphan{attempt}", owner=ghost)
            orphan.release()
            listed = {item.name: item for item in pg.collect_garbage(pg_url)}
            if orphan.name in listed:
                break
            assert not server.exists(orphan.name)
        else:
            pytest.fail("other runs' sweeps dropped every orphan before gc could list it")
        assert listed[orphan.name].action == "drop" and "is not running" in listed[orphan.name].reason
        assert listed[live.name].action == "keep" and "still connected" in listed[live.name].reason
        assert listed[template.name].action == "keep" and "template" in listed[template.name].reason

        done = {item.name: item for item in pg.collect_garbage(pg_url, dry_run=False)}
        assert orphan.name not in done or done[orphan.name].action == "drop"  # (or a sweep was first)
        assert not server.exists(orphan.name)
        assert server.exists(live.name) and server.exists(template.name)
    finally:
        live.drop()


def test_gc_of_templates_judges_again_under_the_build_lock_a_run_notes_its_use_in(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server, pg_url: str
) -> None:
    """A run notes the template it found or built before it lets go of the template's build lock;
    gc --templates drops a template only holding that lock, so no run is between finding it and noting it."""
    migrations = unique_migrations(tmp_path)
    first = backends()
    template = first.template(migrations, NO_SEED)
    first.close()  # the run that built it is over: the template is unused
    registry = psycopg.connect(pg_owner_url(pg_url), autocommit=True)
    key = [pg_owner.TEMPLATE_LOCK, pg_owner.lock_key(template.name[len(pg_owner.TEMPLATE_PREFIX) :])]
    try:
        registry.execute("SELECT pg_advisory_lock(%s, %s)", key)  # a run finding it, about to note it
        held = {item.name: item for item in pg.collect_garbage(pg_url, dry_run=False, templates=True)}
        assert held[template.name].action == "keep", held[template.name]
        assert "a run is building it or starting to use it now" in held[template.name].reason
        assert server.exists(template.name)
    finally:
        registry.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        registry.close()
    later = backends()  # finds the template: its use is noted before the lock is let go
    assert later.template(migrations, NO_SEED).name == template.name
    listed = {item.name: item for item in pg.collect_garbage(pg_url, dry_run=False, templates=True)}
    kept = listed[template.name]
    assert kept.action == "keep" and f"in use by live run {later.run_id}" in kept.reason, kept
    later.close()
    done = {item.name: item for item in pg.collect_garbage(pg_url, dry_run=False, templates=True)}
    assert done[template.name].action == "drop" and not server.exists(template.name)


def test_a_new_backend_sweeps_what_a_crashed_run_left(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server
) -> None:
    backend = backends()
    template = backend.template(unique_migrations(tmp_path), NO_SEED)
    ghost = replace(backend.owner, run=f"dead{secrets.token_hex(2)}", pid=dead_pid())
    orphan = backend.create(template, label="crashed", owner=ghost)
    orphan.release()
    mine = backend.create(template, label="mine")
    try:
        later = backends(sweep=True)
        assert later.wait_for_drops(30)
        assert not server.exists(orphan.name) and server.exists(mine.name)
    finally:
        mine.drop()


# -- restore (the reset strategy) ----------------------------------------------------------------------


def test_restore_brings_the_benchmark_data_back_in_place_keeping_app_connections(bench: Any) -> None:
    backend, template = bench
    fresh = backend.create(template, label="fresh")
    database = backend.create(template, label="reset")
    app = psycopg.connect(database.url("dsn"), autocommit=True)  # an app's connection, kept open
    try:
        expected = table_counts(fresh.primary_connection())
        next_user = (
            fresh.primary_connection().execute("SELECT nextval(pg_get_serial_sequence('users', 'id'))").fetchone()[0]
        )

        app.execute("INSERT INTO users (name, email) VALUES ('Mallory', 'mallory@example.com')")
        app.execute("DELETE FROM order_items")
        app.execute("CREATE TABLE scratch (id int)")
        assert table_counts(app) != expected

        timings = []
        for _ in range(3):
            started = time.perf_counter()
            database.restore(template)
            timings.append((time.perf_counter() - started) * 1000)
            app.execute("UPDATE products SET stock = stock + 1")  # dirty again
        database.restore(template)

        assert table_counts(app) == expected  # the app's connection still works and sees the template's rows
        assert app.execute("SELECT nextval(pg_get_serial_sequence('users', 'id'))").fetchone()[0] == next_user
        assert app.execute("SELECT to_regclass('scratch')").fetchone()[0] is None
        print(f"restore of the benchmark schema: {sorted(timings)[1]:.1f} ms (median of 3)")
        assert len(database.foreign_connections()) == 1  # the app's connection
    finally:
        app.close()
        fresh.drop()
        database.drop()


def test_restore_waits_for_a_transaction_left_open_only_up_to_the_timeout(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path
) -> None:
    backend = backends(close_timeout=0.3)
    template = backend.template(unique_migrations(tmp_path), NO_SEED)
    database = backend.create(template, label="locked")
    holder = database.connect()
    try:
        holder.execute("INSERT INTO users (name) VALUES ('x')")  # a transaction left open
        with pytest.raises(Exception, match="another connection holds a lock.*End the transactions"):
            database.restore(template)
        holder.rollback()
        database.restore(template)
    finally:
        holder.close()
        database.drop()


def test_the_wal_log_strategy_can_be_chosen(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBSCOPE_PG_CLONE_STRATEGY", "wal_log")
    backend = backends()
    assert backend.strategy == "WAL_LOG"
    database = backend.create(backend.template(unique_migrations(tmp_path), NO_SEED), label="wal")
    try:
        primary = database.primary_connection()
        assert primary is not None
        assert primary.execute("SELECT count(*) FROM users").fetchone() == (0,)
    finally:
        database.drop()


def test_open_backend_builds_the_backend_from_the_config_and_hides_the_password(pg_url: str, tmp_path: Path) -> None:
    from dbscope.config import Config

    url = with_password(pg_url, "s3cret-pw")  # the test server trusts local connections: any password works
    backend = open_backend(parse_backend_url(url), run_id="cafe0001", config=Config(url=url, close_timeout=2.0))
    assert isinstance(backend, pg.PostgreSQLBackend)
    try:
        assert (backend.run_id, backend.close_timeout) == ("cafe0001", 2.0)
        database = backend.create(backend.template(unique_migrations(tmp_path), NO_SEED), label="pw")
        try:
            assert "s3cret-pw" in database.url()  # an app needs it to connect
            for text in (repr(backend), repr(database), repr(backend.address)):
                assert "s3cret-pw" not in text
        finally:
            database.drop()
        built = [t.name for t in backend._templates.values() if t.built]
    finally:
        backend.close()
    server = Server(pg_url)
    try:
        for name in built:
            server.drop_template(name)
    finally:
        server.close()


def test_restore_as_a_role_that_is_not_superuser_keeps_triggers_from_firing_twice(
    pg_url: str, server: Server, tmp_path: Path
) -> None:
    role = "dbscope_test_plain"
    server.conn.execute(f"DROP ROLE IF EXISTS {role}")
    server.conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB NOSUPERUSER")
    migrations = unique_migrations(
        tmp_path,
        textwrap.dedent(
            """
        CREATE TABLE parent (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, children int NOT NULL DEFAULT 0);
        CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id));
        CREATE FUNCTION count_child() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE parent SET children = children + 1 WHERE id = NEW.parent_id; RETURN NEW; END $$;
        CREATE TRIGGER child_counted AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION count_child();
        INSERT INTO parent DEFAULT VALUES;
        INSERT INTO child (parent_id) VALUES (1);
        """
        ),
    )
    address = server_address(parse_backend_url(pg_url))
    backend = pg.PostgreSQLBackend(f"postgresql://{role}@{address.host}:{address.port}/postgres", sweep=False)
    template = None
    try:
        assert not backend.superuser
        template = backend.template(migrations, NO_SEED)
        database = backend.create(template, label="plain")
        app = database.connect(autocommit=True)
        app.execute("INSERT INTO child (parent_id) VALUES (1)")
        app.execute("INSERT INTO parent DEFAULT VALUES")
        database.restore(template)
        assert app.execute("SELECT id, children FROM parent").fetchall() == [(1, 1)]  # not bumped by the restore
        assert app.execute("SELECT id, parent_id FROM child").fetchall() == [(1, 1)]
        assert app.execute("SELECT nextval('child_id_seq')").fetchone() == (2,)
        app.close()
        database.drop()
    finally:
        backend.close()
        if template is not None:
            server.drop_template(template.name)
        server.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        server.conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_kept_database_survives_gc_until_asked_for(
    backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path, server: Server, pg_url: str
) -> None:
    backend = backends()
    database = backend.create(backend.template(unique_migrations(tmp_path), NO_SEED), label="failed_test")
    url = database.keep()
    database.release()
    assert url == database.url("dsn") and database.state is pg.DatabaseState.KEPT
    backend.close()  # the run is over: its clones would be garbage now, the kept one is not
    listed = {item.name: item for item in pg.collect_garbage(pg_url, dry_run=False)}
    assert listed[database.name].action == "keep" and "kept for a failed test" in listed[database.name].reason
    assert server.exists(database.name)
    asked = {item.name: item for item in pg.collect_garbage(pg_url, kept=True)}  # a dry run: others' stay too
    assert asked[database.name].action == "drop"
    assert pg_owner.drop_checked(server.conn, database.name) and not server.exists(database.name)


def test_too_many_clients_is_explained_with_what_uses_the_connections(server: Server, pg_url: str) -> None:
    from dbscope.backends.pg_connect import connect_error

    address = server_address(parse_backend_url(with_password(pg_url, "pw-secret")))
    failure = psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already")
    error = connect_error(failure, address, "dbscope_x", budget_from=server.conn)
    message = str(error)
    assert "has no connection left for dbscope" in message and "max_connections" in message
    assert "dbscope needs 1 more" in message and "pw-secret" not in message


PARTIAL_SQL = """
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent ON DELETE CASCADE);
CREATE TABLE other (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE RESTRICT);
CREATE TABLE empty_child (id int PRIMARY KEY, parent_id int REFERENCES parent);
CREATE TABLE grandchild (id int PRIMARY KEY, child_id int REFERENCES child ON DELETE CASCADE);
CREATE TABLE unrelated (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x text);
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
CREATE TABLE big_child (id int PRIMARY KEY, big_id int REFERENCES big);
CREATE TABLE clash (id int PRIMARY KEY, written int, dirty int, o int, dbscope_dirty int, dbscope_oid int);
INSERT INTO parent VALUES (1, 'a'), (2, 'b');
INSERT INTO child VALUES (1, 1), (2, 2);
INSERT INTO other VALUES (1, 1);
INSERT INTO grandchild VALUES (1, 1);
INSERT INTO unrelated (x) VALUES ('u');
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 6000) AS g;
INSERT INTO big_child VALUES (1, 1);
INSERT INTO clash VALUES (1, 1, 2, 3, 4, 5);
"""


def table_rows(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables}


@pytest.mark.parametrize("role", ["superuser", "plain"])
def test_a_restore_restores_only_the_tables_written_and_those_it_must(
    role: str, pg_url: str, server: Server, tmp_path: Path
) -> None:
    """With write tracking on (reset, rollback), a restore restores the tables written, whoever wrote them
    and however (a cascade); a plain role's (foreign keys are checked) also the tables holding rows that
    reference them; TRUNCATE (big tables) every referencing table."""
    plain = "dbscope_test_partial"
    url = pg_url
    if role == "plain":
        server.conn.execute(f"DROP ROLE IF EXISTS {plain}")
        server.conn.execute(f"CREATE ROLE {plain} LOGIN CREATEDB NOSUPERUSER")
        address = server_address(parse_backend_url(pg_url))
        url = f"postgresql://{plain}@{address.host}:{address.port}/postgres"
    backend = pg.PostgreSQLBackend(url, sweep=False)
    template = None
    try:
        assert backend.superuser is (role == "superuser")
        template = backend.template(unique_migrations(tmp_path, PARTIAL_SQL), NO_SEED)
        fresh = backend.create(template, label="fresh")
        expected = table_rows(fresh.primary_connection())
        fresh.drop()
        database = backend.create(template, label="partial")
        database.watch_writes()
        app = database.connect(autocommit=True)
        database.restore(template)  # the first restore does not know what the database held: every table
        assert database.last_restore is not None and not database.last_restore.partial
        parent_reach = {"parent"} if role == "superuser" else {"parent", "child", "grandchild", "other"}
        cases = [
            (["UPDATE parent SET name = 'z' WHERE id = 1"], parent_reach),
            (["INSERT INTO unrelated (x) VALUES ('v')"], {"unrelated"}),
            (["UPDATE big SET pad = 'y' WHERE id = 1"], {"big", "big_child"}),  # TRUNCATE: its referencers too
            (["DELETE FROM parent WHERE id = 2"], parent_reach | {"child", "grandchild"}),  # a cascade
            (["TRUNCATE child CASCADE"], {"child", "grandchild"}),
            (
                ["INSERT INTO unrelated (x) VALUES ('w')", "INSERT INTO users (name) VALUES ('u')"],
                {"unrelated", "users"},
            ),
            (["CREATE INDEX ON unrelated (x)", "INSERT INTO unrelated (x) VALUES ('i')"], {"unrelated"}),  # DDL
            (["DELETE FROM child WHERE id = 2"], {"child", "grandchild"}),  # a cascade (of no row)
            # columns named like the one-call restore's own variables
            (["UPDATE clash SET written = written + 1, dirty = 0, dbscope_dirty = 0, dbscope_oid = 0"], {"clash"}),
        ]
        long_way = {0, 2, 6}  # after the copies were made, a TRUNCATE, DDL: the catalog is read
        for index, (statements, restored) in enumerate(cases):
            for statement in statements:
                app.execute(statement)
            database.restore(template)
            done = database.last_restore
            assert done is not None and done.partial and done.copied, statements
            # a superuser's restore is one call once dbscope knows the catalog (no DDL since)
            assert done.one_call is (role == "superuser" and index not in long_way), statements
            assert {name for _, name in done.tables} == restored, statements
            assert table_rows(app) == expected, statements
            assert app.execute("SELECT nextval(pg_get_serial_sequence('unrelated', 'id'))").fetchone() == (2,)
            database.restore(template)  # (the nextval)
        app.close()
        database.drop()
    finally:
        backend.close()
        if template is not None:
            server.drop_template(template.name)
        if role == "plain":
            server.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [plain])
            server.conn.execute(f"DROP ROLE IF EXISTS {plain}")


def test_a_crash_of_the_server_makes_the_next_restore_whole(tmp_path: Path) -> None:
    """Crash recovery empties unlogged tables: the write marks (so which tables a test wrote is
    lost) and the baseline copies. The next restore notices (the copies' marker is gone) and
    restores every table from the snapshot, making the copies again; the one after is partial."""
    from dbscope.backends.pg_cluster import ThrowawayCluster

    with ThrowawayCluster() as cluster:
        backend = pg.PostgreSQLBackend(cluster.url, sweep=False)
        try:
            template = backend.template(unique_migrations(tmp_path, PARTIAL_SQL), NO_SEED)
            fresh = backend.create(template, label="fresh")
            expected = table_rows(fresh.primary_connection())
            fresh.drop()
            database = backend.create(template, label="crash")
            database.watch_writes()
            database.restore(template)  # the first: every table, and the copies made
            with database.connect(autocommit=True) as app:
                app.execute("UPDATE parent SET name = 'z' WHERE id = 1")
            database.restore(template)
            assert database.last_restore is not None and database.last_restore.partial
            with database.connect(autocommit=True) as app:
                app.execute("SET synchronous_commit = on")  # the cluster's default (off) could lose them in a crash
                app.execute("INSERT INTO unrelated (x) VALUES ('before the crash')")
                app.execute("DELETE FROM child")
            victim = database.connect(autocommit=True)
            os.kill(victim.info.backend_pid, signal.SIGKILL)  # the postmaster resets every session: crash recovery
            victim.close()
            deadline = time.monotonic() + 60
            while True:  # until the server takes connections again
                try:
                    app = database.connect(autocommit=True)
                    app.execute("SELECT 1")
                    break
                except (psycopg.OperationalError, BackendUnavailableError):
                    assert time.monotonic() < deadline, "the server did not come back after the crash"
                    time.sleep(0.05)  # polling the server's recovery, not ordering threads
            with app:
                assert app.execute("SELECT count(*) FROM dbscope_track.dirty").fetchone() == (0,)  # marks gone
                assert app.execute("SELECT count(*) FROM unrelated").fetchone() == (2,)  # the writes are not
                assert app.execute("SELECT count(*) FROM child").fetchone() == (0,)
            database.restore(template)
            done = database.last_restore
            assert done is not None and not done.partial and len(done.tables) == len(expected)
            with database.connect(autocommit=True) as app:
                assert table_rows(app) == expected
                app.execute("INSERT INTO unrelated (x) VALUES ('after')")
            database.restore(template)
            assert database.last_restore is not None and database.last_restore.partial
            with database.connect(autocommit=True) as app:
                assert table_rows(app) == expected
            database.drop()
        finally:
            backend.close()


def test_ddl_under_the_replica_role_is_counted(backends: Callable[..., pg.PostgreSQLBackend], tmp_path: Path) -> None:
    """A superuser's session with session_replication_role = replica fires no ordinary event trigger:
    dbscope's is ENABLE ALWAYS, so its DDL (a trigger disabled, a table created) is counted all the same."""
    from dbscope.backends.pg_snapshot import ddl_count

    backend = backends()
    if not backend.superuser:
        pytest.fail("this test needs a superuser (the default server's postgres role): DDL is counted for one only")
    database = backend.create(backend.template(unique_migrations(tmp_path), NO_SEED), label="replica_ddl")
    try:
        database.watch_writes()
        primary = database.primary_connection()
        assert primary is not None
        before = ddl_count(primary)
        with database.connect(autocommit=True) as app:
            app.execute("SET session_replication_role = replica")
            app.execute("ALTER TABLE users DISABLE TRIGGER USER")
            app.execute("CREATE TABLE replica_made (id int)")
        assert ddl_count(primary) == before + 2
    finally:
        database.drop()
