"""The MariaDB/MySQL server backend (``mysql://``, ``mariadb://``), against a real server.

Runs against the server of the ``mariadb_url`` fixture (tests/mariadbsupport.py): skipped
with the reason when none answers, a failure under CI. Every database a test creates is
dropped by dbscope itself; the templates this session built are dropped at its end.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pymysql = pytest.importorskip("pymysql")

import mariadbsupport  # noqa: E402
from mariadbsupport import connect_args  # noqa: E402

from dbscope import IsolationManager  # noqa: E402
from dbscope.backends import mariadb as mdb  # noqa: E402
from dbscope.backends.mariadb_connect import server_address  # noqa: E402
from dbscope.backends.mariadb_dialect import translate  # noqa: E402
from dbscope.backends.mariadb_owner import OwnerRecord, drop_checked, note_owner  # noqa: E402
from dbscope.backends.mariadb_schema import transient_stats  # noqa: E402
from dbscope.cli import main as cli_main  # noqa: E402
from dbscope.errors import BackendUnavailableError, ConfigError, MigrationError  # noqa: E402
from dbscope.migrations import combined_fingerprint, load_migrations  # noqa: E402
from dbscope.urls import parse_backend_url  # noqa: E402

SCHEMA = """
CREATE TABLE users (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL UNIQUE, email varchar(100));
CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, user_id int NOT NULL, total decimal(10, 2) NOT NULL DEFAULT 0,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, what varchar(100) NOT NULL);
CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, body text,
    size int GENERATED ALWAYS AS (CHAR_LENGTH(body)) VIRTUAL);
CREATE VIEW user_totals AS SELECT u.name, SUM(o.total) AS total FROM users u LEFT JOIN orders o ON o.user_id = u.id
    GROUP BY u.name;
CREATE VIEW big_spenders AS SELECT name FROM user_totals WHERE total > 100;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
BEGIN
    INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id));
END;
"""
SEED = """
INSERT INTO users (name, email) VALUES ('ana', 'ana@example.com'), ('bo', 'bo@example.com');
INSERT INTO orders (user_id, total) VALUES (1, 150), (2, 20);
INSERT INTO notes (body) VALUES ('hello');
"""


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    yield from mariadbsupport.server_url()


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_schema.sql").write_text(SCHEMA)
    (tmp_path / "seed.sql").write_text(SEED)
    return {"migrations": str(tmp_path / "migrations"), "seed": str(tmp_path / "seed.sql")}


@pytest.fixture
def manager_of(mariadb_url: str, project: dict[str, str]) -> Iterator[Any]:
    made: list[IsolationManager] = []

    def make(strategy: str = "clone", **kwargs: Any) -> IsolationManager:
        manager = IsolationManager(mariadb_url, strategy=strategy, **{**project, **kwargs})
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


def raw(url: str | None = None, database: str | None = None) -> Any:
    args = connect_args()
    if database is not None:
        args["database"] = database
    return pymysql.connect(**args)


def scalar(conn: Any, sql: str) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def running(watcher: Any, statement: str) -> int:
    """How many sessions on the server run ``statement`` now."""
    with watcher.cursor() as cursor:
        return int(cursor.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO = %s", (statement,)))


def gone_soon(watcher: Any, statement: str, timeout: float = 5.0) -> bool:
    """Whether ``statement`` stops running within ``timeout`` (the server clears a killed one just after
    its client hears of it)."""
    deadline = time.monotonic() + timeout
    while running(watcher, statement):
        if time.monotonic() > deadline:
            return False
    return True


def wait_until_running(statement: str) -> Any:
    """A connection of its own, returned once the server shows ``statement`` running (30 s at most)."""
    watcher = raw()
    deadline = time.monotonic() + 30
    with watcher.cursor() as cursor:
        while not cursor.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO = %s", (statement,)):
            assert time.monotonic() < deadline, f"{statement} never showed in the processlist"
    return watcher


def databases() -> set[str]:
    conn = raw()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE 'dbscope\\_%'")
            return {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()


# -- no server needed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "args", "expected"),
    [
        ("SELECT ? , '?', `a?`, ? -- ?\n", [1, 2], "SELECT %s , '?', `a?`, %s -- ?\n"),
        ("SELECT :a, ':a', \"it\\'s :a\", :b # :c", {"a": 1, "b": 2}, "SELECT %(a)s, ':a', \"it\\'s :a\", %(b)s # :c"),
        ("SELECT 1 WHERE x LIKE 'a%' AND y = ?", [1], "SELECT 1 WHERE x LIKE 'a%%' AND y = %s"),
        ("SELECT `p%`, ? /* 5% */", [1], "SELECT `p%%`, %s /* 5%% */"),
        ("SELECT 100 % ?", [7], "SELECT 100 %% %s"),
        ("SET @x := ?", [1], "SET @x := %s"),
    ],
)
def test_placeholders_become_pymysql_style_outside_strings_identifiers_and_comments(
    sql: str, args: Any, expected: str
) -> None:
    assert translate(sql, args)[0] == expected


def test_without_arguments_the_sql_goes_out_untouched() -> None:
    assert translate("SELECT '100%' LIKE ?", ()) == ("SELECT '100%' LIKE ?", None)


def test_every_url_format_and_part() -> None:
    address = server_address(parse_backend_url("mariadb://ana:p%40ss@127.0.0.1:3307/app"))
    assert address.url("dbscope_x") == "mysql+pymysql://ana:p%40ss@127.0.0.1:3307/dbscope_x?ssl_disabled=true"
    assert address.url("dbscope_x", "async") == "mysql+aiomysql://ana:p%40ss@127.0.0.1:3307/dbscope_x"
    assert address.url("dbscope_x", "dsn") == "mysql://ana:p%40ss@127.0.0.1:3307/dbscope_x"
    parts = {part: address.url("dbscope_x", part) for part in ("host", "port", "user", "password", "database")}
    assert parts == {"host": "127.0.0.1", "port": "3307", "user": "ana", "password": "p@ss", "database": "dbscope_x"}
    with pytest.raises(ConfigError, match="has no file path; use NAME:host"):
        address.url("dbscope_x", "path")
    assert "p@ss" not in repr(address)


def test_an_unknown_url_option_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown option.*sslmode.*takes unix_socket, charset, driver"):
        server_address(parse_backend_url("mysql://root@127.0.0.1/?sslmode=disable"))


def test_a_remote_server_is_refused_with_the_way_to_allow_it() -> None:
    with pytest.raises(
        BackendUnavailableError,
        match="refusing to use the MariaDB/MySQL server at db.example.com.*dbscope_allow_remote = true",
    ):
        mdb.MariaDBBackend("mysql://root:hunter2@db.example.com:3306/")


def test_clone_names_fit_with_the_write_notes_suffix() -> None:
    name = mdb.clone_name("run" * 10, "a-very-long-test-label" * 4)
    assert len(name) <= 62 and name.startswith("dbscope_run")
    assert mdb.clone_name("R1", "gw0 7") == "dbscope_r1_gw0_7"


def test_the_registry_names_the_extra_for_a_missing_driver() -> None:
    entry = parse_backend_url("mariadb://root@127.0.0.1/").entry
    assert (entry.name, entry.driver, entry.install) == ("mysql", "pymysql", "pip install 'dbscope[mysql]'")


def test_copies_keep_table_statistics_in_memory_unless_the_table_says_otherwise() -> None:
    plain = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=latin1"
    assert transient_stats(plain) == plain.replace("ENGINE=InnoDB", "ENGINE=InnoDB STATS_PERSISTENT=0")
    partitioned = (
        "CREATE TABLE `p` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=latin1\n"
        " PARTITION BY RANGE (`id`)\n(PARTITION `p0` VALUES LESS THAN (10) ENGINE = InnoDB)"
    )
    assert transient_stats(partitioned).count("STATS_PERSISTENT=0") == 1  # in the table's options, not a partition's
    assert transient_stats(partitioned).index("STATS_PERSISTENT") < partitioned.index("PARTITION BY")
    own = "CREATE TABLE `s` (\n  `id` int(11)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 STATS_PERSISTENT=1"
    assert transient_stats(own) == own
    aria = "CREATE TABLE `a` (\n  `id` int(11)\n) ENGINE=Aria DEFAULT CHARSET=latin1"
    assert transient_stats(aria) == aria


# -- errors from a real server ----------------------------------------------------------------------


def test_a_wrong_password_says_so_without_showing_it(mariadb_url: str) -> None:
    url = mariadb_url.replace("://root@", "://root:hunter2@")
    with pytest.raises(BackendUnavailableError, match=r"refused user 'root' \(mysql://root:\*\*\*@") as caught:
        mdb.MariaDBBackend(url)
    assert "hunter2" not in str(caught.value)


def test_a_user_without_process_is_told_what_to_grant(mariadb_url: str) -> None:
    conn = raw()
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE USER IF NOT EXISTS 'dbscope_test_np'@'127.0.0.1' IDENTIFIED BY 'pw'")
            cursor.execute("GRANT ALL ON `dbscope\\_%`.* TO 'dbscope_test_np'@'127.0.0.1'")
        url = f"mysql://dbscope_test_np:pw@127.0.0.1:{connect_args()['port']}/"
        with pytest.raises(
            BackendUnavailableError, match=r"PROCESS privilege.*GRANT PROCESS, CONNECTION ADMIN ON \*\.\*"
        ):
            mdb.MariaDBBackend(url)
    finally:
        with conn.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS 'dbscope_test_np'@'127.0.0.1'")
        conn.close()


def test_an_unreachable_server_names_host_and_port_and_how_to_start_one() -> None:
    with pytest.raises(
        BackendUnavailableError, match=r"cannot reach the MariaDB/MySQL server at 127.0.0.1:1 .*Start it"
    ):
        mdb.MariaDBBackend("mysql://root@127.0.0.1:1/")


def test_a_failing_migration_names_the_statement_and_leaves_no_template(mariadb_url: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001.sql").write_text("CREATE TABLE a (id int);\nCREATE TABLE b (id nonsense_type);\n")
    # Other workers create and drop databases on the same server meanwhile: look for this set's template only.
    template = f"dbscope_tpl_{combined_fingerprint(load_migrations(str(tmp_path / 'm')), load_migrations(None))}"
    with pytest.raises(MigrationError, match="0001.sql.*statement 2"):
        with IsolationManager(mariadb_url, migrations=str(tmp_path / "m")) as manager, manager.scope("never"):
            pass
    assert template not in databases()


def test_a_trigger_with_if_and_case_blocks_migrates_and_fires(mariadb_url: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001.sql").write_text(
        "CREATE TABLE x (a int, b int, c varchar(10));\n"
        "CREATE TRIGGER clamp BEFORE INSERT ON x FOR EACH ROW\nBEGIN\n"
        "  IF NEW.a < 0 THEN SET NEW.a = 0; ELSEIF NEW.a > 9 THEN SET NEW.a = 9; END IF;\n"
        "  CASE NEW.b WHEN 1 THEN SET NEW.c = 'one'; ELSE SET NEW.c = 'many'; END CASE;\n"
        "END;\n"
        "INSERT INTO x (a, b) VALUES (-5, 1);\n"
    )
    with IsolationManager(mariadb_url, migrations=str(tmp_path / "m")) as manager, manager.scope("t") as scope:
        db = scope.client()
        db.execute("INSERT INTO x (a, b) VALUES (?, ?)", [42, 2])
        assert [(row["a"], row["b"], row["c"]) for row in db.execute("SELECT a, b, c FROM x ORDER BY b").rows] == [
            (0, 1, "one"),
            (9, 2, "many"),
        ]


# -- clone ----------------------------------------------------------------------------------------------


def test_clones_are_isolated_and_keep_views_triggers_generated_columns_and_ids(manager_of: Any) -> None:
    manager = manager_of("clone")
    names = []
    for i in range(3):
        with manager.scope(f"test {i}") as scope:
            db = scope.client()
            names.append(scope.database.name)
            assert db.execute("SELECT count(*) FROM users").scalar() == 2
            assert db.execute("SELECT name FROM big_spenders").rows[0]["name"] == "ana"
            assert db.execute("SELECT size FROM notes").scalar() == 5
            db.execute("INSERT INTO users (name) VALUES (?)", [f"u{i}"])
            assert db.execute("SELECT max(id) FROM users").scalar() == 3
            db.execute("INSERT INTO orders (user_id, total) VALUES (3, 1)")
            assert db.execute("SELECT max(id) FROM orders").scalar() == 3
            assert db.execute("SELECT what FROM audit").rows[-1]["what"] == "order 3"  # the trigger came along
            db.execute("DELETE FROM users WHERE id = 1")  # a cascade, in this clone only
            # a copy's table statistics stay in memory: none written at create, none deleted at drop
            stats = "SELECT count(*) FROM mysql.innodb_table_stats WHERE database_name = ?"
            assert db.execute(stats, [scope.database.name]).scalar() == 0
            assert db.execute(stats, [scope.database.template.name]).scalar() > 0  # the template: the server's default
    assert len(set(names)) == 3
    manager.close()
    assert not set(names) & databases()


def test_a_connection_left_open_is_a_leak_and_the_database_is_still_dropped(manager_of: Any) -> None:
    manager = manager_of("clone")
    kept = []
    with manager.scope("leaky") as scope:
        name = scope.database.name
        kept.append(raw(database=name))
        closed = raw(database=name)
        closed.close()
    try:
        assert manager.metrics["connections_leaked"] == 1
        assert manager._backends[manager.config.url].wait_for_drops(10)
        assert name not in databases()
    finally:
        kept[0].close()


def test_closing_a_client_interrupts_a_statement_still_running_in_another_thread(manager_of: Any) -> None:
    import threading

    manager = manager_of("clone")
    with manager.scope("long statement") as scope:
        db = scope.client()
        failures: list[BaseException] = []

        def sleep() -> None:
            try:
                db.execute("SELECT SLEEP(30), 'clone'")
            except BaseException as exc:  # the interrupted statement's error, or ClientClosedError
                failures.append(exc)

        worker = threading.Thread(target=sleep)
        worker.start()
        wait_until_running("SELECT SLEEP(30), 'clone'").close()
        started = time.monotonic()
        assert db.close(timeout=0.5) is False  # not clean: a statement had to be interrupted
        worker.join(10)
        assert not worker.is_alive() and time.monotonic() - started < 5


def test_a_template_is_reused_by_later_runs_and_rebuilt_when_the_migrations_change(
    mariadb_url: str, project: dict[str, str], tmp_path: Path
) -> None:
    from dbscope.migrations import load_migrations

    migrations, seed = load_migrations(project["migrations"]), load_migrations(project["seed"])
    with mdb.MariaDBBackend(mariadb_url, sweep=False) as first:
        template = first.template(migrations, seed)
    with mdb.MariaDBBackend(mariadb_url, sweep=False) as second:
        again = second.template(migrations, seed)
        assert (again.name, again.built) == (template.name, False)
    (Path(project["migrations"]) / "0002_more.sql").write_text("CREATE TABLE more_things (id int);\n")
    with mdb.MariaDBBackend(mariadb_url, sweep=False) as third:
        changed = third.template(load_migrations(project["migrations"]), seed)
        assert changed.name != template.name and changed.built


def test_sqlalchemy_metadata_migrations_build_through_mysql_pymysql(mariadb_url: str, tmp_path: Path) -> None:
    (tmp_path / "models_for_mariadb.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "items = sa.Table('items', metadata, sa.Column('id', sa.Integer, primary_key=True),"
        " sa.Column('name', sa.String(50), nullable=False))\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with IsolationManager(mariadb_url, migrations="models_for_mariadb:metadata") as manager:
            with manager.scope("metadata") as scope:
                db = scope.client()
                db.execute("INSERT INTO items (name) VALUES (?)", ["x"])
                assert db.execute("SELECT id, name FROM items").rows[0].as_dict() == {"id": 1, "name": "x"}
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("models_for_mariadb", None)


def test_urls_work_with_sqlalchemy_sync_and_async_and_pymysql(manager_of: Any) -> None:
    import asyncio

    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    manager = manager_of("clone")
    with manager.scope("urls") as scope:
        engine = sqlalchemy.create_engine(scope.url())
        with engine.begin() as conn:
            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM users")).scalar_one() == 2
        engine.dispose()

        async def count() -> int:
            engine = create_async_engine(scope.url("async"))
            try:
                async with engine.connect() as conn:
                    return int((await conn.execute(sqlalchemy.text("SELECT count(*) FROM orders"))).scalar_one())
            finally:
                await engine.dispose()

        assert asyncio.run(count()) == 2
        conn = scope.connect()
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 2


# -- reset -----------------------------------------------------------------------------------------------


def test_reset_restores_rows_ids_and_the_tables_a_test_created_or_dropped(manager_of: Any) -> None:
    manager = manager_of("reset")
    for i in range(3):
        with manager.scope(f"reset {i}") as scope:
            db = scope.client()
            assert db.execute("SELECT count(*) FROM users").scalar() == 2
            assert db.execute("SELECT count(*) FROM audit").scalar() == 2  # the trigger did not fire on restore
            other = raw(database=scope.database.name)
            with other.cursor() as cursor:
                cursor.execute("INSERT INTO users (name) VALUES ('from another connection')")
                assert cursor.lastrowid == 3
                cursor.execute("INSERT INTO orders (user_id, total) VALUES (3, 10)")
                cursor.execute("DELETE FROM users WHERE id = 1")  # cascades to orders
                cursor.execute("TRUNCATE TABLE notes")
                cursor.execute(f"CREATE TABLE made_in_test_{i} (x int)")
                if i == 1:
                    cursor.execute("SET foreign_key_checks = 0")
                    cursor.execute("DROP TABLE audit")
            other.close()
    with manager.scope("after") as scope:
        db = scope.client()
        tables = {row[0] for row in db.execute("SHOW TABLES").rows}
        assert tables == {"users", "orders", "audit", "notes", "user_totals", "big_spenders"}
        assert db.execute("SELECT count(*) FROM notes").scalar() == 1
        db.execute("INSERT INTO orders (user_id, total) VALUES (1, 1)")
        assert db.execute("SELECT max(id) FROM orders").scalar() == 3
        assert db.execute("SELECT max(id) FROM audit").scalar() == 3


def test_reset_restores_only_what_was_written_yet_catches_cascades_and_failed_inserts(manager_of: Any) -> None:
    manager = manager_of("reset")
    with manager.scope("cascades") as scope:
        conn = raw(database=scope.database.name)
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM users WHERE id = 1")  # only users is noted; orders loses a row by cascade
            with pytest.raises(pymysql.IntegrityError):
                cursor.execute("INSERT INTO notes (id, body) VALUES (1, 'taken')")  # no row, but...
            cursor.execute("INSERT IGNORE INTO audit (id, what) VALUES (1, 'x')")  # ignored: no trigger fires
            with pytest.raises(pymysql.IntegrityError):
                cursor.execute("INSERT INTO users (name) VALUES ('bo')")  # a failed insert moves AUTO_INCREMENT
        conn.close()
    with manager.scope("next") as scope:
        db = scope.client()
        assert db.execute("SELECT count(*) FROM orders").scalar() == 2
        db.execute("INSERT INTO users (name) VALUES ('new')")
        assert db.execute("SELECT max(id) FROM users").scalar() == 3
        create = db.execute("SHOW CREATE TABLE notes").rows[0][1]
        db.execute("DROP TABLE notes")  # made again as it was: its write-note triggers are gone
        db.execute(create)
    for n in range(2):
        with manager.scope(f"writes the remade table {n}") as scope:
            db = scope.client()
            assert db.execute("SELECT body FROM notes").rows[0]["body"] == "hello"
            db.execute("INSERT INTO notes (body) VALUES ('new')")
            db.execute("UPDATE notes SET body = 'changed' WHERE id = 1")


def test_reset_names_a_test_that_altered_a_table_and_recreates_the_database(manager_of: Any) -> None:
    manager = manager_of("reset")
    with manager.scope("alters") as scope:
        conn = raw(database=scope.database.name)
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE users ADD COLUMN nickname varchar(20)")
        conn.close()
    assert "test 'alters' changed the schema of" in scope.isolation_errors[0]
    with manager.scope("next") as scope:
        columns = [row[0] for row in scope.client().execute("SHOW COLUMNS FROM users").rows]
        assert columns == ["id", "name", "email"]


# -- rollback -----------------------------------------------------------------------------------------


def test_rollback_undoes_the_test_and_sets_auto_increment_back(manager_of: Any) -> None:
    manager = manager_of("rollback")
    for i in range(3):
        with manager.scope(f"rollback {i}") as scope:
            db = scope.client()
            assert db.execute("SELECT count(*) FROM users").scalar() == 2
            db.execute("INSERT INTO users (name) VALUES (?)", [f"u{i}"])
            assert db.execute("SELECT max(id) FROM users").scalar() == 3
            with db.transaction() as tx:  # a savepoint inside the scope's transaction
                tx.execute("INSERT INTO orders (user_id, total) VALUES (3, 5)")
            assert db.execute("SELECT max(id) FROM audit").scalar() == 3


def test_rollback_notices_another_connections_commit_and_restores(manager_of: Any) -> None:
    manager = manager_of("rollback")
    with manager.scope("commits elsewhere") as scope:
        conn = raw(database=scope.database.name)
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO users (name) VALUES ('committed elsewhere')")
            cursor.execute("TRUNCATE TABLE notes")
        conn.close()
    with manager.scope("next") as scope:
        db = scope.client()
        assert db.execute("SELECT count(*) FROM users").scalar() == 2
        assert db.execute("SELECT count(*) FROM notes").scalar() == 1
        db.execute("INSERT INTO users (name) VALUES ('x')")
        assert db.execute("SELECT max(id) FROM users").scalar() == 3


def test_write_marks_name_the_tables_other_connections_wrote_or_truncated(
    mariadb_url: str, project: dict[str, str]
) -> None:
    from dbscope.migrations import load_migrations

    with mdb.MariaDBBackend(mariadb_url, sweep=False) as backend:
        template = backend.template(load_migrations(project["migrations"]), load_migrations(project["seed"]))
        database = backend.create(template, label="marks")
        try:
            database.watch_writes()
            mark = database.write_mark(None)
            assert database.written_since(None, mark) is None
            conn = raw(database=database.name)
            with conn.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("INSERT INTO audit (what) VALUES ('rolled back')")
                cursor.execute("ROLLBACK")
                assert database.written_since(None, mark) is None  # a rolled-back write leaves no note
                cursor.execute("UPDATE users SET email = NULL WHERE id = 2")
                assert database.written_since(None, mark) == "users"
                cursor.execute("TRUNCATE TABLE notes")  # no trigger fires for TRUNCATE
                assert database.written_since(None, mark) == "a table truncated or rebuilt, users"
            conn.close()
            assert database.written_since(None, database.write_mark(None)) is None
        finally:
            database.drop()
            backend.wait_for_drops(10)
    assert database.name not in databases() and f"{database.name}_w" not in databases()


def test_rollback_ends_a_transaction_another_connection_left_open_and_names_the_test(manager_of: Any) -> None:
    manager = manager_of("rollback")
    with manager.scope("leaves a transaction") as scope:
        held = raw(database=scope.database.name)
        with held.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("INSERT INTO users (name) VALUES ('never committed')")
    assert "left 1 transaction(s) open" in scope.isolation_errors[0]
    assert "KILL CONNECTION" in scope.isolation_errors[0]
    with manager.scope("next") as scope:
        assert scope.client().execute("SELECT count(*) FROM users").scalar() == 2


# -- gc and doctor ------------------------------------------------------------------------------------


def test_gc_drops_what_dead_runs_left_and_never_a_live_runs_or_a_stranger(mariadb_url: str, manager_of: Any) -> None:
    live = manager_of("clone")
    with live.scope("alive") as scope:
        conn = raw()
        dead = OwnerRecord("clone", "deadrun1", "deadrun1", "another-host", "", 1, created=time.time() - 3600)
        orphan = "dbscope_deadrun1_x"
        try:
            with conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE dbscope_not_ours")
            # a dead run's database is everyone's to sweep: a run starting meanwhile (the suite's other
            # workers start many) may drop it before gc lists it; then a new one is made for gc to find
            for attempt in range(5):
                orphan = f"dbscope_deadrun1_x{attempt}"
                with conn.cursor() as cursor:
                    cursor.execute(note_owner(orphan, dead))
                    cursor.execute(f"CREATE DATABASE {orphan}")
                listed = {item.name: item for item in mdb.collect_garbage(mariadb_url, stale_after_s=60)}
                if orphan in listed:
                    break
                assert orphan not in databases()
            else:
                pytest.fail("other runs' sweeps dropped every orphan before gc could list it")
            assert listed[orphan].action == "drop"
            assert listed[scope.database.name].action == "keep"
            assert listed["dbscope_not_ours"].action == "keep"
            assert "no dbscope owner record" in listed["dbscope_not_ours"].reason
            with pytest.raises(BackendUnavailableError, match="refusing to drop database 'dbscope_not_ours'"):
                drop_checked(conn, "dbscope_not_ours")
            mdb.collect_garbage(mariadb_url, dry_run=False)
            left = databases()
            assert orphan not in left and scope.database.name in left
        finally:
            with conn.cursor() as cursor:
                cursor.execute("DROP DATABASE IF EXISTS dbscope_not_ours")
                cursor.execute(f"DROP DATABASE IF EXISTS {orphan}")
            conn.close()


def test_gc_of_templates_judges_again_under_the_build_lock_a_run_notes_its_use_in(
    mariadb_url: str, tmp_path: Path
) -> None:
    """gc --templates drops a template only holding its build lock, the lock a run holds from finding
    (or building) the template until it has noted its use: no run is ever between the two."""
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001.sql").write_text(f"-- {time.time_ns()}\nCREATE TABLE t (id int);\n")
    with IsolationManager(mariadb_url, migrations=str(tmp_path / "migrations")) as manager:
        with manager.scope("build") as scope:
            assert isinstance(scope.database, mdb.MariaDBDatabase)
            template = scope.database.template.name
    holder = raw()
    try:
        assert scalar(holder, f"SELECT GET_LOCK('{template}', 0)") == 1  # a run finding it, about to note it
        held = {item.name: item for item in mdb.collect_garbage(mariadb_url, dry_run=False, templates=True)}
        assert held[template].action == "keep" and "starting to use it now" in held[template].reason, held[template]
    finally:
        scalar(holder, f"SELECT RELEASE_LOCK('{template}')")
        holder.close()
    done = {item.name: item for item in mdb.collect_garbage(mariadb_url, dry_run=False, templates=True)}
    assert done[template].action == "drop" and template not in databases()


def test_doctor_and_gc_work_on_a_mariadb_url(
    mariadb_url: str, project: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(["doctor", "--url", mariadb_url, "--migrations", project["migrations"], "--seed", project["seed"]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "a MariaDB/MySQL server" in out and "clones" in out
    assert cli_main(["gc", "--url", mariadb_url]) == 0
    assert "dbscope_registry" in capsys.readouterr().out


# -- cost ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_per_scope_cost(manager_of: Any, strategy: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the median cost of one scope that writes a row (not a limit: a figure for the docs)."""
    manager = manager_of(strategy)
    with manager.scope("warm-up"):
        pass
    times = []
    for i in range(20):
        started = time.perf_counter()
        with manager.scope(f"cost {i}") as scope:
            scope.client().execute("INSERT INTO users (name) VALUES ('x')")
        times.append((time.perf_counter() - started) * 1000)
    with capsys.disabled():
        print(f"\nMariaDB {strategy}: median scope {statistics.median(times):.1f} ms over {len(times)}")


# -- the quick looks between scopes -------------------------------------------------------------------


def _quiet_scopes(manager: Any, n: int = 3) -> Any:
    """At least ``n`` scopes that only read, until dbscope's looks are quick; returns the worker's database.

    Looks turn quick after a full look during which no other session on the server ran a
    statement: on a shared server (another xdist worker) that can take a few scopes more.
    """
    deadline = time.monotonic() + 60
    i = 0
    while True:
        with manager.scope(f"reads only {i}") as scope:
            assert scope.client().execute("SELECT count(*) FROM users").scalar() == 2
        i += 1
        if i >= n and scope.database._seen is not None:
            return scope.database
        assert time.monotonic() < deadline, "the looks never turned quick: another session always busy?"


def _columns(db: Any) -> list[str]:
    return [row[0] for row in db.execute("SHOW COLUMNS FROM users").rows]


@pytest.mark.parametrize("strategy", ["reset", "rollback"])
@pytest.mark.parametrize(
    "alter",
    [
        "ALTER TABLE {db}.users ADD COLUMN nick varchar(9)",  # from a session on another database
        "EXECUTE IMMEDIATE 'ALTER TABLE {db}.users ADD COLUMN nick varchar(9)'",
        "PREPARE dbscope_alter FROM 'ALTER TABLE {db}.users ALTER COLUMN email SET DEFAULT ''x'''",
        "CREATE TRIGGER {db}.users_nick BEFORE INSERT ON {db}.users FOR EACH ROW SET NEW.email = 'y'",
    ],
    ids=["plain", "execute-immediate", "prepared", "trigger"],
)
def test_a_schema_change_in_any_form_is_seen_even_while_looks_are_quick(
    manager_of: Any, strategy: str, alter: str
) -> None:
    """Between full looks dbscope reads only the server's statement counts; a schema change still shows."""
    manager = manager_of(strategy)
    database = _quiet_scopes(manager)  # only the counts and the write notes are read now
    quoted = f"`{database.name}`"
    with manager.scope("changes the schema elsewhere") as scope:
        other = raw()  # on no database: the session is never one of the test's database's
        with other.cursor() as cursor:
            cursor.execute(alter.format(db=quoted))
            if alter.startswith("PREPARE"):
                cursor.execute("EXECUTE dbscope_alter")
        other.close()
    if strategy == "rollback" or "TRIGGER" not in alter:  # reset drops a trigger the template lacks, no more
        assert any("changed the schema of" in error for error in scope.isolation_errors), scope.isolation_errors
    with manager.scope("next") as scope:
        db = scope.client()
        assert _columns(db) == ["id", "name", "email"]
        triggers = [row["Trigger"] for row in db.execute("SHOW TRIGGERS LIKE 'users'").rows]
        assert [name for name in triggers if not name.startswith("dbscope_")] == []
        assert db.execute(
            "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'users' AND COLUMN_NAME = 'email'"
        ).scalar() in (None, "NULL")


@pytest.mark.parametrize("strategy", ["reset", "rollback"])
def test_quick_looks_still_see_what_happens_between_tests_leaks_and_truncates(manager_of: Any, strategy: str) -> None:
    manager = manager_of(strategy)
    database = _quiet_scopes(manager)
    other = raw(database=database.name)
    with other.cursor() as cursor:  # between tests: the suite's own fixture, say; the next test starts on it
        cursor.execute("CREATE TABLE made_between (x int)")
    with manager.scope("after a fixture made a table") as scope:
        assert "made_between" in {row[0] for row in scope.client().execute("SHOW TABLES").rows}
    _quiet_scopes(manager, 2)
    with manager.scope("leaves a connection open") as scope:
        scope.client().execute("SELECT 1")
        leaked = raw(database=database.name)
    assert scope.leaked_connections == 1
    leaked.close()
    _quiet_scopes(manager, 2)
    with manager.scope("truncates elsewhere") as scope:
        with other.cursor() as cursor:
            cursor.execute("TRUNCATE TABLE notes")
    other.close()
    with manager.scope("next") as scope:
        db = scope.client()
        assert db.execute("SELECT body FROM notes").scalar() == "hello"
        db.execute("INSERT INTO notes (body) VALUES ('n')")
        assert db.execute("SELECT max(id) FROM notes").scalar() == 2


def test_rollback_sets_back_auto_increment_a_failed_insert_moved_while_looks_are_quick(manager_of: Any) -> None:
    manager = manager_of("rollback")
    _quiet_scopes(manager)
    for i in range(3):
        with manager.scope(f"failed insert {i}") as scope:
            db = scope.client()
            with pytest.raises(Exception, match="Duplicate"):
                db.execute("INSERT INTO users (name) VALUES ('bo')")  # no row, but the counter moved
            with pytest.raises(Exception, match="Duplicate"):
                db.execute("INSERT INTO orders (id, user_id) VALUES (1, 1)")  # explicit id: nothing moves
        with manager.scope(f"next {i}") as scope:
            db = scope.client()
            db.execute("INSERT INTO users (name) VALUES ('new')")
            assert db.execute("SELECT max(id) FROM users").scalar() == 3


def test_rollback_close_interrupts_a_statement_running_on_the_shared_connection(manager_of: Any) -> None:
    """Under rollback every client shares dbscope's connection: close(timeout) ends its statement with KILL QUERY."""
    import threading

    manager = manager_of("rollback")
    with manager.scope("long statement on the shared connection") as scope:
        db = scope.client()
        db.execute("INSERT INTO users (name) VALUES ('kept until the rollback')")
        failures: list[BaseException] = []

        def sleep() -> None:
            try:
                db.execute("SELECT SLEEP(30), 'rollback'")
            except BaseException as exc:  # the interrupted statement's error
                failures.append(exc)

        worker = threading.Thread(target=sleep)
        worker.start()
        watcher = wait_until_running("SELECT SLEEP(30), 'rollback'")
        started = time.monotonic()
        assert db.close(timeout=0.5) is False  # not clean: the statement had to be interrupted
        worker.join(10)
        elapsed = time.monotonic() - started
        assert not worker.is_alive() and elapsed < 5, elapsed
        assert "interrupted" in " ".join(db.close_problems)
        assert gone_soon(watcher, "SELECT SLEEP(30), 'rollback'")
        watcher.close()
    with manager.scope("next") as scope:
        assert scope.client().execute("SELECT count(*) FROM users").scalar() == 2


# -- drivers ----------------------------------------------------------------------------------------------


def with_driver(url: str, driver: str) -> str:
    return url + ("&" if "?" in url else "?") + f"driver={driver}"


def test_an_unknown_driver_is_named_with_the_two_there_are() -> None:
    with pytest.raises(ConfigError, match="unknown driver 'mysql-connector'.*driver=pymysql.*driver=mysqlclient"):
        server_address(parse_backend_url("mysql://root@127.0.0.1:3306/?driver=mysql-connector"))


def test_driver_mysqlclient_without_mysqlclient_says_how_to_install_it_when_the_url_is_read() -> None:
    """A process where ``import MySQLdb`` fails, as where mysqlclient was never installed."""
    import subprocess
    import sys

    program = (
        "import sys; sys.modules['MySQLdb'] = None  # what Python does for a package that is not there\n"
        "from dbscope.backends.mariadb_connect import server_address\n"
        "from dbscope.urls import parse_backend_url\n"
        "server_address(parse_backend_url('mysql://root@127.0.0.1:3306/?driver=mysqlclient'))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dbscope.BackendUnavailableError: dbscope_url asks for driver=mysqlclient,"), last
    assert "which is not installed" in last and "pip install mysqlclient" in last, last
    assert last.endswith("or leave driver= out for PyMySQL"), last


def mysqlclient_or_skip() -> Any:
    """mysqlclient's connections module; skips (fails under CI) where it is not installed.

    It compiles against MariaDB's client library: ./run installs it when ``pkg-config`` finds
    ``libmariadb`` (Debian: ``apt-get install libmariadb-dev pkg-config``), and CI does.
    """
    import importlib

    try:
        return importlib.import_module("MySQLdb.connections")
    except ImportError as exc:
        pytest.skip(f"mysqlclient is not installed ({exc}): apt-get install libmariadb-dev pkg-config, then ./run")


@pytest.mark.parametrize("driver", ["pymysql", "mysqlclient"])
@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_each_driver_serves_the_tests_connections_under_every_strategy(
    mariadb_url: str, project: dict[str, str], driver: str, strategy: str
) -> None:
    import sqlalchemy

    mysqldb = mysqlclient_or_skip() if driver == "mysqlclient" else None
    manager = IsolationManager(
        with_driver(mariadb_url, driver), strategy=strategy, migrations=project["migrations"], seed=project["seed"]
    )
    try:
        for i in range(3):
            with manager.scope(f"{driver} {i}") as scope:
                db = scope.client()
                assert mysqldb is None or isinstance(db._conn, mysqldb.Connection)
                assert isinstance(db._conn, pymysql.connections.Connection) is (driver == "pymysql")
                assert db.execute("SELECT count(*) FROM users").scalar() == 2
                db.execute("INSERT INTO users (name) VALUES (?)", [f"u{i}"])
                assert db.execute("SELECT max(id) FROM users").scalar() == 3
                assert db.execute("SELECT name FROM users WHERE name LIKE 'u%' AND id > ?", [0]).scalar() == f"u{i}"
                with db.transaction() as tx:
                    tx.execute("INSERT INTO orders (user_id, total) VALUES (:u, :t)", {"u": 3, "t": 5})
                assert db.execute("SELECT max(id) FROM audit").scalar() == 3  # the trigger fired
                url = scope.database.url("sqlalchemy")
                assert url.startswith("mysql+mysqldb://" if driver == "mysqlclient" else "mysql+pymysql://")
                assert "driver=" not in url and "driver=" not in scope.database.url("dsn")
                if strategy == "clone":  # a committed row: an engine of the handed-out URL reads it
                    engine = sqlalchemy.create_engine(url)
                    try:
                        with engine.connect() as conn:
                            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM users")).scalar() == 3
                            assert conn.connection.dbapi_connection.__class__.__module__.startswith(
                                "MySQLdb" if driver == "mysqlclient" else "pymysql"
                            )
                    finally:
                        engine.dispose()
    finally:
        manager.close()


@pytest.mark.parametrize("strategy", ["clone", "rollback"])
def test_mysqlclient_close_interrupts_a_running_statement(
    mariadb_url: str, project: dict[str, str], strategy: str
) -> None:
    import threading

    mysqlclient_or_skip()

    manager = IsolationManager(
        with_driver(mariadb_url, "mysqlclient"),
        strategy=strategy,
        migrations=project["migrations"],
        seed=project["seed"],
    )
    try:
        statement = f"SELECT SLEEP(30), 'mysqlclient {strategy}'"  # its own: tests run side by side
        with manager.scope("long statement") as scope:
            db = scope.client()
            failures: list[BaseException] = []

            def sleep() -> None:
                try:
                    db.execute(statement)
                except BaseException as exc:
                    failures.append(exc)

            worker = threading.Thread(target=sleep)
            worker.start()
            watcher = wait_until_running(statement)
            started = time.monotonic()
            assert db.close(timeout=0.5) is False
            worker.join(10)
            assert not worker.is_alive() and time.monotonic() - started < 5
            assert gone_soon(watcher, statement)
            watcher.close()
        with manager.scope("next") as scope:
            assert scope.client().execute("SELECT count(*) FROM users").scalar() == 2
    finally:
        manager.close()


JOINED_TESTS = """
import os, sqlalchemy, pytest

@pytest.mark.parametrize("n", range(3))
def test_joined(db, db_engine, db_session, db_url, n):
    assert db_url.startswith("mysql+mysqldb://") and os.environ["DATABASE_URL"] == db_url
    assert type(db._conn).__module__ == "dbscope.backends.mariadb_connect" and hasattr(db._conn, "session_id")
    db.execute("INSERT INTO users (name) VALUES (?)", ["a"])
    with db_engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM users")).scalar() == 3
        conn.execute(sqlalchemy.text("INSERT INTO users (name) VALUES ('b')"))
        conn.commit()
    assert db_session.execute(sqlalchemy.text("SELECT count(*) FROM users")).scalar() == 4
    assert db.execute("SELECT max(id) FROM users").scalar() == 4
"""


@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_mysqlclient_through_the_plugin_with_engines_and_sessions(
    pytester: pytest.Pytester, mariadb_url: str, project: dict[str, str], strategy: str
) -> None:
    """``?driver=mysqlclient``: db, db_engine (mysql+mysqldb://, joined under rollback), db_session, DATABASE_URL."""
    mysqlclient_or_skip()
    pytester.makefile(
        ".ini",
        pytest=f"[pytest]\ndbscope_url = {with_driver(mariadb_url, 'mysqlclient')}\n"
        f"dbscope_migrations = {project['migrations']}\ndbscope_seed = {project['seed']}\n",
    )
    pytester.makepyfile(test_joined=JOINED_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--dbscope-strategy={strategy}")
    result.assert_outcomes(passed=3)
