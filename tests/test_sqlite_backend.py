"""The SQLite backend: templates, clones in memory and in files, leaks, restore, drop."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from dbscope import IsolationManager
from dbscope.backends.sqlite import SQLiteBackend, SQLiteFileDatabase, SQLiteMemoryDatabase
from dbscope.errors import BackendUnavailableError, MigrationError
from dbscope.migrations import MigrationSet, load_migrations
from dbscope.pool import ClonePool

if TYPE_CHECKING:
    from conftest import MakeProject

USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
NO_SEED = MigrationSet()


def database_files(directory: Path) -> list[str]:
    """The files in a backend's directory, less the run's owner file (dbscope_<run>.owner)."""
    return sorted(name for name in os.listdir(directory) if not name.endswith(".owner"))


def write_migrations(directory: Path, files: dict[str, str]) -> MigrationSet:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return load_migrations(directory)


def counting_migration(calls: list[int]) -> MigrationSet:
    """A migration that records each time it runs, i.e. each template build."""

    def create_users(conn: Any) -> None:
        calls.append(1)
        conn.execute(USERS_SQL)

    return load_migrations(create_users)


def user_names(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM users ORDER BY id")]


def tables(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def add_user(database: SQLiteMemoryDatabase | SQLiteFileDatabase, name: str) -> None:
    conn = database.connect(autocommit=True)
    try:
        conn.execute("INSERT INTO users (name) VALUES (?)", [name])
    finally:
        conn.close()


def names_in(database: SQLiteMemoryDatabase | SQLiteFileDatabase) -> list[str]:
    conn = database.connect()
    try:
        return user_names(conn)
    finally:
        conn.close()


@pytest.fixture
def migrations(tmp_path: Path) -> MigrationSet:
    return write_migrations(tmp_path / "migrations", {"0001_users.sql": USERS_SQL})


@pytest.fixture
def seed(tmp_path: Path) -> MigrationSet:
    return write_migrations(tmp_path / "seed", {"seed.sql": "INSERT INTO users (name) VALUES ('Ana');\n"})


@pytest.fixture
def backend() -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend()
    yield backend
    backend.close()


@pytest.fixture
def clones(backend: SQLiteBackend) -> Iterator[Callable[..., SQLiteMemoryDatabase]]:
    """Create in-memory clones; every one is dropped at the end of the test."""
    made: list[SQLiteMemoryDatabase] = []

    def create(migrations: MigrationSet, seed: MigrationSet = NO_SEED, label: str = "") -> SQLiteMemoryDatabase:
        database = backend.create(backend.template(migrations, seed), label=label or f"clone{len(made)}")
        assert isinstance(database, SQLiteMemoryDatabase)
        made.append(database)
        return database

    yield create
    for database in made:
        database.drop()


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    return tmp_path / "databases"


@pytest.fixture
def file_backend(db_dir: Path) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(directory=str(db_dir), in_memory=False)
    yield backend
    backend.close()


def file_clone(backend: SQLiteBackend, migrations: MigrationSet, label: str = "one") -> SQLiteFileDatabase:
    database = backend.create(backend.template(migrations, NO_SEED), label=label)
    assert isinstance(database, SQLiteFileDatabase)
    return database


# --- in memory: templates ----------------------------------------------------------


def test_a_template_is_built_once_per_fingerprint(backend: SQLiteBackend) -> None:
    calls: list[int] = []
    migrations = counting_migration(calls)

    first = backend.template(migrations, NO_SEED)
    again = backend.template(migrations, NO_SEED)

    assert again is first
    assert calls == [1]


def test_migrations_with_other_content_give_another_template(
    backend: SQLiteBackend, tmp_path: Path, seed: MigrationSet
) -> None:
    users = write_migrations(tmp_path / "a", {"0001.sql": USERS_SQL})
    same_files = load_migrations(tmp_path / "a")
    other = write_migrations(tmp_path / "b", {"0001.sql": "CREATE TABLE orders (id INTEGER PRIMARY KEY);\n"})

    template = backend.template(users, NO_SEED)

    assert backend.template(same_files, NO_SEED) is template
    assert backend.template(other, NO_SEED) is not template
    assert backend.template(other, NO_SEED).fingerprint != template.fingerprint
    assert backend.template(users, seed) is not template  # the seed is part of the key


def test_threads_asking_for_the_same_template_at_once_build_it_once(backend: SQLiteBackend) -> None:
    calls: list[int] = []
    migrations = counting_migration(calls)
    start = threading.Barrier(8)
    templates: list[Any] = []

    def ask() -> None:
        start.wait(10)
        templates.append(backend.template(migrations, NO_SEED))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert calls == [1]
    assert len(templates) == 8
    assert all(t is templates[0] for t in templates)


def test_a_failing_migration_raises_migration_error_and_is_not_cached(backend: SQLiteBackend, tmp_path: Path) -> None:
    broken = write_migrations(tmp_path / "broken", {"0001_users.sql": USERS_SQL, "0002_bad.sql": "CREATE TABLE;\n"})

    for _ in range(2):
        with pytest.raises(MigrationError, match=r"migration failed in .*0002_bad\.sql, line 1 \(statement 1\)"):
            backend.template(broken, NO_SEED)


def test_closing_the_backend_closes_its_templates(migrations: MigrationSet) -> None:
    backend = SQLiteBackend()
    template = backend.template(migrations, NO_SEED)

    backend.close()

    with pytest.raises(sqlite3.ProgrammingError, match="Cannot operate on a closed database"):
        template.connection.execute("SELECT 1")


# --- in memory: clones ---------------------------------------------------------------


def test_a_clone_has_the_migrated_schema_and_the_seed_data(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet, seed: MigrationSet
) -> None:
    database = clones(migrations, seed)

    conn = database.connect()
    try:
        assert tables(conn) == ["users"]
        assert user_names(conn) == ["Ana"]
    finally:
        conn.close()


def test_clones_are_independent_of_each_other_and_of_the_template(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet, seed: MigrationSet
) -> None:
    first, second = clones(migrations, seed), clones(migrations, seed)

    add_user(first, "Bea")

    assert names_in(first) == ["Ana", "Bea"]
    assert names_in(second) == ["Ana"]
    assert names_in(clones(migrations, seed)) == ["Ana"]


def test_a_clone_is_named_with_the_prefix_and_the_label_and_given_out_through_the_alias(
    migrations: MigrationSet,
) -> None:
    backend = SQLiteBackend(run_id="r1")
    try:
        database = backend.create(backend.template(migrations, NO_SEED), label="gw0_7")
        try:
            assert isinstance(database, SQLiteMemoryDatabase)
            assert database.name == "dbscope_gw0_7"  # the directory is the run's own: no run id
            assert database.path == Path(f"{backend.directory}/dbscope_gw0_7.sqlite3")
            assert backend.alias is not None
            path = f"{backend.alias.path}/dbscope_gw0_7.sqlite3"  # the same string in every process
            assert database.url("dsn") == path
            assert os.path.realpath(path) == str(database.path)
            assert database.url() == f"sqlite:///{path}"
            assert database.url("sqlalchemy") == database.url()
            assert database.url("async") == f"sqlite+aiosqlite:///{path}"
        finally:
            database.drop()
    finally:
        backend.close()


def test_two_backends_never_share_a_clone_with_the_same_label(migrations: MigrationSet) -> None:
    one, two = SQLiteBackend(), SQLiteBackend()
    try:
        a = one.create(one.template(migrations, NO_SEED), label="same")
        b = two.create(two.template(migrations, NO_SEED), label="same")
        add_user(a, "Ana")

        assert a.path != b.path and a.url() != b.url()  # one name, each in its backend's own directory
        assert names_in(b) == []
        a.drop()
        b.drop()
    finally:
        one.close()
        two.close()


def test_a_raw_sqlite3_connection_to_the_dsn_sees_the_clones_data(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    add_user(database, "Ana")

    conn = sqlite3.connect(database.url("dsn"), uri=True)
    try:
        assert user_names(conn) == ["Ana"]
        conn.execute("INSERT INTO users (name) VALUES ('Bea')")
        conn.commit()
    finally:
        conn.close()
    assert names_in(database) == ["Ana", "Bea"]


def test_a_sqlalchemy_engine_from_the_url_sees_the_clones_data(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    add_user(database, "Ana")

    engine = sa.create_engine(database.url())
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT name FROM users")).scalars().all() == ["Ana"]
            conn.execute(sa.text("INSERT INTO users (name) VALUES ('Bea')"))
    finally:
        engine.dispose()
    assert names_in(database) == ["Ana", "Bea"]


def test_a_connection_opened_in_another_thread_sees_the_clones_data(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    add_user(database, "Ana")
    seen: list[list[str]] = []

    def read() -> None:
        conn = sqlite3.connect(database.url("dsn"), uri=True)
        try:
            seen.append(user_names(conn))
        finally:
            conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(10)

    assert seen == [["Ana"]]


def test_after_release_and_drop_the_name_is_empty_again(backend: SQLiteBackend, migrations: MigrationSet) -> None:
    database = backend.create(backend.template(migrations, NO_SEED), label="dropped")
    assert isinstance(database, SQLiteMemoryDatabase)
    add_user(database, "Ana")

    database.release()
    database.drop()

    assert not any(Path(f"{database.path}{suffix}").exists() for suffix in ("", "-wal", "-shm", "-journal"))
    conn = sqlite3.connect(database.url("dsn"), uri=True)
    try:
        assert tables(conn) == []
        assert conn.execute("PRAGMA page_count").fetchone() == (0,)
    finally:
        conn.close()


def test_no_foreign_connection_is_counted_when_nothing_else_holds_the_clone(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    own = database.connect()
    own.close()

    database.release()

    assert len(database.foreign_connections()) == 0


def test_a_raw_connection_left_open_is_counted_as_a_foreign_connection(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    leaked = sqlite3.connect(database.url("dsn"), uri=True)
    try:
        database.release()

        assert len(database.foreign_connections()) == 1
    finally:
        leaked.close()
    assert len(database.foreign_connections()) == 0


def test_a_connection_nobody_holds_any_more_is_not_counted(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    conn = sqlite3.connect(database.url("dsn"), uri=True)
    cursor = conn.cursor()
    assert len(database.foreign_connections()) == 1
    del conn  # never closed, but its cursor still holds it: still open, still someone's
    assert len(database.foreign_connections()) == 1
    del cursor  # now unreachable: the garbage collector closes it, it is no one's leak
    assert len(database.foreign_connections()) == 0


def test_a_sqlalchemy_engine_never_disposed_is_counted_as_a_foreign_connection(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    engine = sa.create_engine(database.url())
    try:
        with engine.connect() as conn:  # returned to the engine's pool, so still open
            conn.execute(sa.text("SELECT 1"))
        database.release()

        assert len(database.foreign_connections()) == 1
    finally:
        engine.dispose()
    assert len(database.foreign_connections()) == 0


def test_a_clone_of_an_empty_template_still_detects_a_leak(
    clones: Callable[..., SQLiteMemoryDatabase],
) -> None:
    database = clones(NO_SEED)  # no migrations at all
    leaked = sqlite3.connect(database.url("dsn"), uri=True)
    try:
        database.release()

        assert len(database.foreign_connections()) == 1
    finally:
        leaked.close()
    assert len(database.foreign_connections()) == 0


def test_restore_brings_back_the_template_contents_in_place_while_another_connection_stays_open(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet, seed: MigrationSet
) -> None:
    database = clones(migrations, seed)
    app = sqlite3.connect(database.url("dsn"), uri=True)  # e.g. the app's engine, built once at import
    try:
        app.execute("INSERT INTO users (name) VALUES ('Bea')")
        app.execute("CREATE TABLE scratch (x)")
        app.commit()
        assert user_names(app) == ["Ana", "Bea"]

        database.restore(backend.template(migrations, seed))

        assert user_names(app) == ["Ana"]
        assert tables(app) == ["users"]
    finally:
        app.close()


def test_restore_after_release_says_the_database_was_released(backend: SQLiteBackend, migrations: MigrationSet) -> None:
    template = backend.template(migrations, NO_SEED)
    database = backend.create(template, label="released")
    database.release()

    with pytest.raises(BackendUnavailableError, match=f"database {database.name} was already released"):
        database.restore(template)
    database.drop()


# --- in files --------------------------------------------------------------------------


def test_the_template_file_is_named_after_the_fingerprint(
    file_backend: SQLiteBackend, db_dir: Path, migrations: MigrationSet
) -> None:
    template = file_backend.template(migrations, NO_SEED)

    assert template.path == db_dir.resolve() / f"dbscope_tpl_{template.fingerprint}.sqlite3"
    assert database_files(db_dir) == [template.path.name]
    conn = sqlite3.connect(template.path)
    try:
        assert tables(conn) == ["users"]
    finally:
        conn.close()


def test_the_template_file_is_reused_by_a_later_backend(db_dir: Path) -> None:
    calls: list[int] = []
    migrations = counting_migration(calls)
    first = SQLiteBackend(directory=str(db_dir), in_memory=False)
    path = first.template(migrations, NO_SEED).path
    first.close()
    built = path.stat().st_mtime_ns

    later = SQLiteBackend(directory=str(db_dir), in_memory=False)
    try:
        assert later.template(migrations, NO_SEED).path == path
    finally:
        later.close()

    assert calls == [1]
    assert path.stat().st_mtime_ns == built


def test_rebuild_builds_the_template_file_again(db_dir: Path) -> None:
    calls: list[int] = []
    migrations = counting_migration(calls)
    first = SQLiteBackend(directory=str(db_dir), in_memory=False)
    path = first.template(migrations, NO_SEED).path
    first.close()
    with sqlite3.connect(path) as conn:  # a mark that only a rebuild removes
        conn.execute("INSERT INTO users (name) VALUES ('stale')")
    conn.close()

    later = SQLiteBackend(directory=str(db_dir), in_memory=False)
    try:
        later.template(migrations, NO_SEED, rebuild=True)
    finally:
        later.close()

    assert calls == [1, 1]
    conn = sqlite3.connect(path)
    try:
        assert user_names(conn) == []
    finally:
        conn.close()
    assert database_files(db_dir) == [path.name]


def test_a_failing_migration_leaves_no_template_and_no_building_file(
    file_backend: SQLiteBackend, db_dir: Path, tmp_path: Path
) -> None:
    broken = write_migrations(
        tmp_path / "broken", {"0001_users.sql": USERS_SQL, "0002_bad.sql": "INSERT INTO nowhere VALUES (1);\n"}
    )

    with pytest.raises(
        MigrationError, match=r"migration failed in .*0002_bad\.sql, line 1 \(statement 1\): no such table: nowhere"
    ):
        file_backend.template(broken, NO_SEED)

    assert database_files(db_dir) == []


def test_a_directory_that_vanished_gives_backend_unavailable_error(
    file_backend: SQLiteBackend, db_dir: Path, migrations: MigrationSet
) -> None:
    shutil.rmtree(db_dir)

    with pytest.raises(
        BackendUnavailableError,
        match=r"cannot write the template .*dbscope_tpl_\w+\.sqlite3: unable to open database file; "
        r"point dbscope_url at a writable directory",
    ):
        file_backend.template(migrations, NO_SEED)


def test_a_file_clone_is_a_prefixed_copy_of_the_template(
    file_backend: SQLiteBackend, db_dir: Path, migrations: MigrationSet
) -> None:
    database = file_clone(file_backend, migrations)

    assert database.path.parent == db_dir.resolve()
    assert database.path.name == f"dbscope_{file_backend.run_id}_one.sqlite3"
    assert database.name == database.path.stem
    assert names_in(database) == []
    assert database.url("dsn") == str(database.path)
    assert database.url() == f"sqlite:///{database.path}"
    assert database.url("async") == f"sqlite+aiosqlite:///{database.path}"


def test_file_clones_are_independent(file_backend: SQLiteBackend, migrations: MigrationSet) -> None:
    first, second = file_clone(file_backend, migrations, "a"), file_clone(file_backend, migrations, "b")

    add_user(first, "Ana")

    assert names_in(first) == ["Ana"]
    assert names_in(second) == []


def test_a_file_clone_is_reachable_from_another_process(file_backend: SQLiteBackend, migrations: MigrationSet) -> None:
    database = file_clone(file_backend, migrations)
    add_user(database, "Ana")

    script = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT name FROM users').fetchone()[0])"
    result = subprocess.run(
        [sys.executable, "-c", script, database.url("dsn")], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "Ana"


def test_a_sqlalchemy_engine_from_the_file_url_sees_the_clones_data(
    file_backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    database = file_clone(file_backend, migrations)
    add_user(database, "Ana")

    engine = sa.create_engine(database.url())
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM users")).scalars().all() == ["Ana"]
    finally:
        engine.dispose()


def test_drop_removes_the_file_and_its_journal_and_wal_siblings(
    file_backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    database = file_clone(file_backend, migrations)
    template_file = file_backend.template(migrations, NO_SEED).path
    for suffix in ("-journal", "-wal", "-shm"):
        Path(f"{database.path}{suffix}").touch()

    database.drop()

    assert database_files(database.path.parent) == [template_file.name]


def test_foreign_connections_counts_open_connections_to_the_file_exactly(
    file_backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    database = file_clone(file_backend, migrations)
    database.release()
    assert len(database.foreign_connections()) == 0

    own = database.connect()  # dbscope's own connections are never foreign
    assert len(database.foreign_connections()) == 0
    own.close()
    first = sqlite3.connect(str(database.path))
    assert len(database.foreign_connections()) == 1
    second = sqlite3.connect(database.url("dsn"))
    assert len(database.foreign_connections()) == 2

    first.close()
    assert len(database.foreign_connections()) == 1
    second.close()
    assert len(database.foreign_connections()) == 0


def test_restore_brings_back_a_file_clones_contents_in_place(
    file_backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    template = file_backend.template(migrations, NO_SEED)
    database = file_clone(file_backend, migrations)
    app = sqlite3.connect(database.url("dsn"))
    try:
        app.execute("INSERT INTO users (name) VALUES ('Ana')")
        app.commit()

        database.restore(template)

        assert user_names(app) == []
    finally:
        app.close()


def test_drop_refuses_a_file_without_the_dbscope_prefix(
    file_backend: SQLiteBackend, tmp_path: Path, migrations: MigrationSet
) -> None:
    precious = tmp_path / "precious.sqlite3"
    database = SQLiteFileDatabase(precious, file_backend.template(migrations, NO_SEED))

    with pytest.raises(
        BackendUnavailableError, match=r"refusing to delete .*precious\.sqlite3: dbscope did not create it"
    ):
        database.drop()

    assert precious.exists()


def test_without_a_directory_file_databases_go_to_a_temp_dir_that_close_removes(migrations: MigrationSet) -> None:
    backend = SQLiteBackend(in_memory=False)
    directory = backend.directory
    assert directory is not None
    database = file_clone(backend, migrations)
    assert directory.name.startswith("dbscope_")
    assert database.path.parent == directory

    backend.close()

    assert not directory.exists()


def test_a_directory_that_cannot_be_created_gives_backend_unavailable_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    target = tmp_path / "afile" / "sub"

    with pytest.raises(
        BackendUnavailableError,
        match=rf"cannot create the SQLite directory {re.escape(str(target))}: Not a directory; "
        r"point dbscope_url at a writable directory \(sqlite:///path/to/dir\)",
    ):
        SQLiteBackend(directory=str(target), in_memory=False)


def test_a_clone_that_cannot_be_written_gives_backend_unavailable_error(
    file_backend: SQLiteBackend, db_dir: Path, migrations: MigrationSet
) -> None:
    template = file_backend.template(migrations, NO_SEED)
    template.path.unlink()

    with pytest.raises(
        BackendUnavailableError,
        match=rf"cannot create the database file dbscope_{file_backend.run_id}_x\.sqlite3 "
        rf"in {re.escape(str(db_dir.resolve()))}: "
        r"No such file or directory; free some disk space or point dbscope_url at another directory",
    ):
        file_backend.create(template, label="x")


# --- readers while a writer holds a transaction; the run's private directory ------------------

#: enough uncommitted rows to outgrow SQLite's page cache (2 MB by default): a rollback-journal
#: database then locks out readers until the writer ends its transaction; WAL does not
SPILL_ROWS, SPILL_ROW_BYTES = 3000, 4000


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def read_names_at_once(dsn: str) -> list[str]:
    """A new connection that does not wait (busy timeout 0): a lock fails it at once."""
    conn = sqlite3.connect(dsn, uri=dsn.startswith("file:"), timeout=0)
    try:
        return user_names(conn)
    finally:
        conn.close()


@pytest.fixture(params=["memory", "files"])
def any_clone(
    request: pytest.FixtureRequest, backend: SQLiteBackend, file_backend: SQLiteBackend, migrations: MigrationSet
) -> Iterator[SQLiteMemoryDatabase | SQLiteFileDatabase]:
    """A clone of each backend, with one committed user, Ana."""
    chosen = backend if request.param == "memory" else file_backend
    database = chosen.create(chosen.template(migrations, NO_SEED), label="readers")
    add_user(database, "Ana")
    yield database
    database.drop()


def test_an_in_memory_clone_is_a_wal_file_in_a_private_directory_on_tmpfs(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    database = clones(migrations)

    assert backend.directory is not None
    assert database.path.parent == backend.directory
    assert backend.directory.name.startswith("dbscope_")
    if os.access("/dev/shm", os.W_OK):
        assert backend.directory.parent == Path("/dev/shm")
    assert (backend.directory / f"dbscope_{backend.run_id}.owner").exists()
    assert journal_mode(database.path) == "wal"
    template = backend.template(migrations, NO_SEED)
    assert template.path == backend.directory / f"dbscope_tpl_{template.fingerprint}.sqlite3"
    assert journal_mode(template.path) == "wal"


def test_readers_get_the_last_committed_rows_while_the_writer_holds_a_transaction(
    any_clone: SQLiteMemoryDatabase | SQLiteFileDatabase,
) -> None:
    writer = any_clone.primary_connection() or any_clone.connect(autocommit=True)
    engine = sa.create_engine(any_clone.url(), connect_args={"timeout": 0})
    try:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO users (name) VALUES ('uncommitted')")

        assert read_names_at_once(any_clone.url("dsn")) == ["Ana"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM users")).scalars().all() == ["Ana"]

        writer.executemany(
            "INSERT INTO users (name) VALUES (?)", [(os.urandom(SPILL_ROW_BYTES).hex(),) for _ in range(SPILL_ROWS)]
        )
        assert read_names_at_once(any_clone.url("dsn")) == ["Ana"]  # the writer's cache spilled: still no wait

        writer.execute("COMMIT")
        assert len(read_names_at_once(any_clone.url("dsn"))) == 2 + SPILL_ROWS
    finally:
        engine.dispose()
        if writer is not any_clone.primary_connection():
            writer.close()


def test_an_async_engine_reads_the_last_committed_rows_while_the_writer_holds_a_transaction(
    clones: Callable[..., SQLiteMemoryDatabase], migrations: MigrationSet
) -> None:
    database = clones(migrations)
    add_user(database, "Ana")
    writer = database.primary_connection()
    assert writer is not None
    writer.execute("BEGIN")
    writer.execute("INSERT INTO users (name) VALUES ('uncommitted')")

    async def read() -> list[str]:
        engine = create_async_engine(database.url("async"), connect_args={"timeout": 0})
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(sa.text("SELECT name FROM users"))).scalars().all())
        finally:
            await engine.dispose()

    try:
        assert asyncio.run(read()) == ["Ana"]
    finally:
        writer.execute("ROLLBACK")


def test_restore_keeps_the_database_in_wal_mode(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    database = clones(migrations)
    add_user(database, "Ana")

    database.restore(backend.template(migrations, NO_SEED))

    assert names_in(database) == []
    assert journal_mode(database.path) == "wal"


def test_keep_saves_one_plain_file_and_removes_the_clones_files(
    backend: SQLiteBackend, migrations: MigrationSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = backend.create(backend.template(migrations, NO_SEED), label="failed")
    assert isinstance(database, SQLiteMemoryDatabase)
    add_user(database, "Ana")

    kept = Path(database.keep())

    assert kept == tmp_path / ".dbscope" / "failed" / f"{database.name}.sqlite3"
    assert journal_mode(kept) == "delete"  # a single file, as tools expect
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]
    conn = sqlite3.connect(str(kept))
    try:
        assert user_names(conn) == ["Ana"]
    finally:
        conn.close()
    assert not database.path.exists()
    database.drop()


def test_a_file_template_cached_without_wal_gives_clones_in_wal_mode(db_dir: Path, migrations: MigrationSet) -> None:
    first = SQLiteBackend(directory=str(db_dir), in_memory=False)
    path = first.template(migrations, NO_SEED).path
    first.close()
    assert journal_mode(path) == "wal"
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA journal_mode = DELETE")  # as an older dbscope cached it
    conn.close()

    later = SQLiteBackend(directory=str(db_dir), in_memory=False)
    try:
        database = file_clone(later, migrations)
        assert journal_mode(database.path) == "wal"
        assert journal_mode(path) == "delete"  # the cached template itself is left as it is
        database.drop()
    finally:
        later.close()


def test_closing_the_backend_removes_its_private_directory(migrations: MigrationSet) -> None:
    backend = SQLiteBackend()
    database = backend.create(backend.template(migrations, NO_SEED), label="left")
    add_user(database, "Ana")
    leaked = sqlite3.connect(database.url("dsn"))  # a connection the app never closed
    directory = backend.directory
    assert directory is not None

    backend.close()

    assert not directory.exists()
    leaked.close()


KILLED_RUN = """
import os, sys
from dbscope.backends.sqlite import SQLiteBackend
from dbscope.migrations import load_migrations

backend = SQLiteBackend(in_memory=sys.argv[2] == "memory")
database = backend.create(backend.template(load_migrations(sys.argv[1]), load_migrations(None)), label="x")
database.connect().execute("INSERT INTO users (name) VALUES ('Ana')").connection.commit()
print(backend.directory, flush=True)
os._exit(9)  # no close(), no atexit: what a killed worker leaves
"""


@pytest.mark.parametrize("kind", ["memory", "files"])
def test_the_next_backend_removes_the_private_directory_a_killed_run_left(
    kind: str, migrations: MigrationSet, tmp_path: Path
) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUN)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "migrations"), kind], capture_output=True, text=True
    )
    assert done.returncode == 9, done.stderr
    left = Path(done.stdout.strip())
    assert any(name.endswith(".sqlite3") for name in os.listdir(left))
    alive = SQLiteBackend(in_memory=kind == "memory")  # a live run's directory is never touched
    try:
        following = SQLiteBackend(in_memory=kind == "memory")
        try:
            assert not left.exists()
            assert alive.directory is not None and alive.directory.exists()
        finally:
            following.close()
    finally:
        alive.close()


def test_a_second_writer_waits_for_the_writers_transaction_then_is_told_the_database_is_locked(
    any_clone: SQLiteMemoryDatabase | SQLiteFileDatabase,
) -> None:
    writer = any_clone.primary_connection() or any_clone.connect(autocommit=True)
    second = sqlite3.connect(any_clone.url("dsn"), timeout=0.05)  # SQLite allows one writer at a time
    try:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO users (name) VALUES ('uncommitted')")

        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            second.execute("INSERT INTO users (name) VALUES ('second')")
        writer.execute("ROLLBACK")
        second.execute("INSERT INTO users (name) VALUES ('second')")  # once the first transaction ends
        second.commit()
        assert read_names_at_once(any_clone.url("dsn")) == ["Ana", "second"]
    finally:
        second.close()
        if writer is not any_clone.primary_connection():
            writer.close()


def test_a_restore_after_nothing_was_written_writes_nothing(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    template = backend.template(migrations, NO_SEED)
    database = clones(migrations)
    wal = Path(f"{database.path}-wal")
    add_user(database, "Ana")
    database.restore(template)
    after_first = wal.stat().st_size

    reader = sqlite3.connect(database.url("dsn"))  # reads, and a transaction that is rolled back, change nothing
    user_names(reader)
    reader.execute("INSERT INTO users (name) VALUES ('rolled back')")
    reader.rollback()
    database.restore(template)

    assert wal.stat().st_size == after_first  # no page copied again
    reader.close()
    assert names_in(database) == []


@pytest.mark.parametrize("writer", ["the anchor", "another connection"])
def test_a_restore_after_any_commit_restores(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet, writer: str
) -> None:
    template = backend.template(migrations, NO_SEED)
    database = clones(migrations)
    database.restore(template)
    anchor = database.primary_connection()
    assert anchor is not None
    conn = anchor if writer == "the anchor" else database.connect(autocommit=True)

    conn.execute("CREATE TABLE scratch (x)")  # DDL too: it changes no row count
    database.restore(template)

    assert tables(anchor) == ["users"]
    if conn is not anchor:
        conn.close()


@pytest.mark.slow  # a fault: waits out the restore timeout (5 s)
def test_a_restore_while_another_connection_holds_a_write_transaction_is_refused_not_skipped(
    clones: Callable[..., SQLiteMemoryDatabase], backend: SQLiteBackend, migrations: MigrationSet
) -> None:
    template = backend.template(migrations, NO_SEED)
    database = clones(migrations)
    database.restore(template)
    open_transaction = sqlite3.connect(database.url("dsn"))
    try:
        open_transaction.execute("INSERT INTO users (name) VALUES ('never committed')")  # nothing committed yet

        with pytest.raises(BackendUnavailableError, match="another connection has kept it locked for 0.2 s"):
            database.restore(template, timeout=0.2)
    finally:
        open_transaction.close()


RUN_RECORDS_ITS_DIRECTORY = """
import os

def test_records_where_its_database_is(db):
    with open("where.txt", "w") as out:
        # the real directory behind the URL's /proc/self/fd alias, which dies with the process
        out.write(os.path.dirname(os.path.realpath(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))))
    if os.environ.get("KILL_THE_RUN"):
        os._exit(9)  # no teardown, no atexit: a killed worker
"""


def test_a_run_on_sqlite_memory_leaves_no_file_behind_even_when_killed(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester = project()
    pytester.makepyfile(test_where=RUN_RECORDS_ITS_DIRECTORY)

    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
    finished = Path((pytester.path / "where.txt").read_text())
    assert finished.name.startswith("dbscope_") and not finished.exists()

    monkeypatch.setenv("KILL_THE_RUN", "1")
    assert pytester.runpytest_subprocess("-p", "no:randomly").ret == 9
    monkeypatch.delenv("KILL_THE_RUN")
    killed = Path((pytester.path / "where.txt").read_text())
    assert killed != finished and any(p.suffix == ".sqlite3" for p in killed.iterdir())

    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
    assert not killed.exists()  # the next run on the host removed what the killed one left
    assert not Path((pytester.path / "where.txt").read_text()).exists()


# --- the clone pool: clones made ahead by its thread ----------------------------------


def pool_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "dbscope-pool"}


def run_directory(scope: Any) -> Path:
    """The run's private directory, where a scope's database of sqlite:// is."""
    assert isinstance(scope.database, SQLiteMemoryDatabase)
    return scope.database.path.parent


def test_a_clone_made_ahead_is_the_template_byte_for_byte_and_its_connection_is_dbscopes_own(
    migrations: MigrationSet, tmp_path: Path
) -> None:
    with IsolationManager("sqlite://", migrations=str(tmp_path / "migrations")) as manager:
        with manager.scope("made while it waits") as scope:
            scope.client().execute("INSERT INTO users (name) VALUES ('Ana')")
            assert manager.wait_for_pools(30)
        (template,) = run_directory(scope).glob("dbscope_tpl_*.sqlite3")

        with manager.scope("made ahead") as scope:
            database = scope.database
            assert isinstance(database, SQLiteMemoryDatabase)
            wal = Path(f"{database.path}-wal")
            assert database.path.read_bytes() == template.read_bytes()
            assert not wal.exists() or wal.stat().st_size == 0
            client = scope.client()
            assert client._conn is database.primary_connection()  # db borrows the pool's connection
            assert client.execute("SELECT count(*) FROM users").scalar() == 0
            assert database.foreign_connections() == {}  # the pool's connection is dbscope's own
        assert scope.leaked_connections == 0
        assert manager.metrics["pool_hits"] == 1


def test_a_clone_made_ahead_costs_its_scope_the_pool_threads_work(migrations: MigrationSet, tmp_path: Path) -> None:
    """The report must not hide cost: what the pool's thread spent making a clone is in the setup of the
    scope that takes it; a clone made while the scope waits is in its setup already, and not twice."""
    with IsolationManager("sqlite://", migrations=str(tmp_path / "migrations")) as manager:
        with manager.scope("made while it waits") as scope:
            assert manager.wait_for_pools(30)
        assert scope.made_ms == 0.0
        with manager.scope("made ahead") as scope:
            pass
        assert manager.metrics["pool_hits"] == 1
        assert scope.made_ms > 0.0
        assert scope.setup_ms > scope.made_ms
        assert manager._made_ahead_ms.keys() <= {id(db) for pool in manager._pools.values() for db in pool._ready}


@pytest.fixture
def counted_clones(migrations: MigrationSet) -> Iterator[tuple[Callable[[], Any], dict[str, int]]]:
    """A real sqlite:// backend's create(), counting the clones each thread made."""
    backend = SQLiteBackend()
    template = backend.template(migrations, NO_SEED)
    made: dict[str, int] = {}

    def create() -> Any:
        thread = threading.current_thread().name
        made[thread] = made.get(thread, 0) + 1
        return backend.create(template, label=f"adaptive{sum(made.values())}")

    yield create, made
    backend.close()


def take_and_drop(pool: ClonePool) -> None:
    database = pool.take()
    database.release()
    database.drop()


def test_an_adaptive_pool_clones_in_the_taker_while_the_taker_never_waits(
    counted_clones: tuple[Callable[[], Any], dict[str, int]],
) -> None:
    """A clone made in this process competes with the tests for the GIL: with no idle time between
    takes, the pool's thread makes (almost) none ahead, and is not even woken for each take."""
    create, made = counted_clones
    pool = ClonePool(create, size=2, name="adaptive-pool", adaptive=True)
    try:
        for _ in range(60):
            take_and_drop(pool)
    finally:
        pool.close()
    assert pool.hits + pool.misses == 60
    # a taker preempted on a loaded machine looks idle for a moment: a few clones ahead may follow
    assert made.get("adaptive-pool", 0) <= 15, made
    assert made[threading.current_thread().name] >= 45, made


def test_an_adaptive_pool_clones_ahead_while_the_taker_waits_on_io(
    counted_clones: tuple[Callable[[], Any], dict[str, int]],
) -> None:
    create, made = counted_clones
    pool = ClonePool(create, size=2, name="adaptive-pool", adaptive=True)
    io = threading.Event()  # never set: each wait is a test blocked on I/O for 20 ms
    try:
        for _ in range(30):
            take_and_drop(pool)
            io.wait(0.02)
    finally:
        pool.close()
    assert pool.hits >= 20, (pool.hits, pool.misses)  # after the first takes measured the clone and the wait
    assert made["adaptive-pool"] >= 20, made


def test_an_adaptive_pool_fills_while_someone_waits_for_it(
    counted_clones: tuple[Callable[[], Any], dict[str, int]],
) -> None:
    create, _ = counted_clones
    pool = ClonePool(create, size=2, name="adaptive-pool", adaptive=True)
    try:
        take_and_drop(pool)  # measured: no idle time yet, so nothing is made ahead by itself
        assert pool.wait_ready(timeout=30)
        assert pool.ready == 2
        take_and_drop(pool)
        assert pool.hits == 1
    finally:
        pool.close()


def test_closing_the_manager_stops_the_pool_thread_and_removes_its_clones(
    migrations: MigrationSet, tmp_path: Path
) -> None:
    before = pool_threads()
    manager = IsolationManager("sqlite://", migrations=str(tmp_path / "migrations"))
    with manager.scope("first") as scope:
        directory = run_directory(scope)
    assert manager.wait_for_pools(30)
    assert manager.pool_ready == manager.pool_size
    threads = pool_threads() - before
    assert len(threads) == 1

    manager.close()

    assert not any(thread.is_alive() for thread in threads)
    assert not directory.exists()  # the clones made ahead went with the run's directory


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_takes_the_clones_its_parent_made_ahead(migrations: MigrationSet, tmp_path: Path) -> None:
    with IsolationManager("sqlite://", migrations=str(tmp_path / "migrations")) as manager:
        with manager.scope("first") as scope:
            directory = run_directory(scope)
        assert manager.wait_for_pools(30)
        waiting = {p.name for p in directory.glob("dbscope_*.sqlite3") if not p.name.startswith("dbscope_tpl_")}
        assert len(waiting) == manager.pool_size
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a scope, then out without any teardown (pytest-forked's way)
            code = 1
            try:
                with manager.scope("in the child") as scope:
                    scope.client().execute("INSERT INTO users (name) VALUES ('child')")
                    os.write(write, f"{scope.database.name}.sqlite3".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        taken = os.read(read, 4096).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)

        assert os.waitstatus_to_exitcode(status) == 0
        assert taken and taken not in waiting  # the child cloned its own
        assert not (directory / taken).exists()  # and dropped it
        with manager.scope("the parent's next") as scope:  # the parent's clones are intact, its thread runs
            assert f"{scope.database.name}.sqlite3" in waiting
            assert scope.client().execute("SELECT count(*) FROM users").scalar() == 0
        assert manager.wait_for_pools(30)
