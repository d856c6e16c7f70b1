"""Client, Transaction, ResultSet and Row on a real in-memory SQLite clone."""

from __future__ import annotations

import copy
import inspect
import pickle
import re
import sqlite3
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbscope import Client, ClientClosedError, DbscopeError, IsolationManager, ResultSet
from dbscope.backends.sqlite import SQLiteBackend, SQLiteMemoryDatabase
from dbscope.migrations import MigrationSet, load_migrations

SCOPE_ID = "test_1700000000000_0badc0de"
TEST_NAME = "test_checkout_works"

# Counting to 10**9 takes SQLite minutes: only an interrupt ends it in time.
# signal_running() (registered on the client's connection) runs inside the statement,
# so once it has been called the statement is certainly running and holds the client.
COUNT_TO_A_BILLION = (
    "WITH RECURSIVE n(i) AS (SELECT signal_running() UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_users.sql").write_text(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT);\n"
    )
    (directory / "0002_orders.sql").write_text(
        textwrap.dedent(
            """\
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
                total INTEGER NOT NULL
            );
            """
        )
    )
    return directory


@pytest.fixture
def database(migrations_dir: Path) -> Iterator[SQLiteMemoryDatabase]:
    backend = SQLiteBackend()
    template = backend.template(load_migrations(migrations_dir), MigrationSet())
    database = backend.create(template, label="client_tests")
    assert isinstance(database, SQLiteMemoryDatabase)
    yield database
    database.drop()
    backend.close()


@pytest.fixture
def running() -> threading.Event:
    """Set by signal_running() from inside a statement of the client."""
    return threading.Event()


@pytest.fixture
def db(database: SQLiteMemoryDatabase, running: threading.Event) -> Iterator[Client]:
    def signal_running() -> int:
        running.set()
        return 1

    def connect(*, autocommit: bool = False) -> sqlite3.Connection:
        conn = database.connect(autocommit=autocommit)
        conn.create_function("signal_running", 0, signal_running)
        return conn

    client = Client(connect, database.dialect, scope_id=SCOPE_ID, test_name=TEST_NAME, close_timeout=5.0)
    yield client
    client.close()


def names(db: Client) -> list[str]:
    return [row.name for row in db.execute("SELECT name FROM users ORDER BY id")]


def count(db: Client, table: str = "users") -> int:
    value = db.execute(f"SELECT count(*) FROM {table}").scalar()
    assert isinstance(value, int)
    return value


def add_ana(db: Client) -> ResultSet:
    return db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Ana", "ana@example.com"])


def run_in_thread(func: Callable[[], Any]) -> list[Exception]:
    """Run func in another thread (bounded wait) and return what it raised."""
    raised: list[Exception] = []

    def target() -> None:
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            raised.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the other thread is still blocked on the client"
    return raised


def line_of_next_statement() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


# --- execute, ResultSet and Row ----------------------------------------------------


def test_execute_takes_positional_arguments(db: Client) -> None:
    add_ana(db)

    result = db.execute("SELECT name, email FROM users WHERE name = ?", ("Ana",))

    assert result.rows == [("Ana", "ana@example.com")]


def test_execute_takes_named_arguments(db: Client) -> None:
    db.execute("INSERT INTO users (name, email) VALUES (:name, :email)", {"name": "Bea", "email": "bea@example.com"})

    result = db.execute("SELECT email FROM users WHERE name = :name", {"name": "Bea"})

    assert result.scalar() == "bea@example.com"


def test_a_result_set_knows_its_columns_and_its_length(db: Client) -> None:
    add_ana(db)

    result = db.execute("SELECT id, name, email FROM users")

    assert result.columns == ("id", "name", "email")
    assert len(result) == 1
    assert list(result) == result.rows


def test_a_statement_without_rows_gives_an_empty_result(db: Client) -> None:
    result = db.execute("CREATE TABLE notes (body TEXT)")

    assert (result.rows, result.columns, result.rows_affected) == ([], (), 0)


def test_a_row_is_read_by_column_name_by_index_and_as_an_attribute(db: Client) -> None:
    add_ana(db)

    row = db.execute("SELECT id, name, email FROM users").rows[0]

    assert row["name"] == row[1] == row.name == "Ana"
    assert row[-1] == row.email == "ana@example.com"
    assert row[0:2] == (1, "Ana")
    assert len(row) == 3
    assert list(row) == [1, "Ana", "ana@example.com"]
    assert row.keys() == ["id", "name", "email"]
    assert row.as_dict() == dict(row) == {"id": 1, "name": "Ana", "email": "ana@example.com"}


def test_a_row_equals_the_tuple_and_the_dict_of_its_values(db: Client) -> None:
    add_ana(db)

    row = db.execute("SELECT id, name FROM users").rows[0]

    assert row == (1, "Ana")
    assert row == {"id": 1, "name": "Ana"}
    assert row == db.execute("SELECT id, name FROM users").rows[0]
    assert row != (1, "Bob")
    assert row != {"id": 1}
    assert row != {"id": 1, "name": "Bob"}
    assert hash(row) == hash((1, "Ana"))


def test_a_missing_column_name_raises_key_error_listing_the_columns(db: Client) -> None:
    add_ana(db)
    row = db.execute("SELECT id, name, email FROM users").rows[0]

    with pytest.raises(KeyError, match="no column 'nickname'; columns are id, name, email"):
        row["nickname"]


def test_a_missing_column_attribute_raises_attribute_error_listing_the_columns(db: Client) -> None:
    add_ana(db)
    row = db.execute("SELECT id, name FROM users").rows[0]

    with pytest.raises(AttributeError, match="no column 'nickname'; columns are id, name"):
        row.nickname  # noqa: B018


def test_a_row_index_out_of_range_raises_index_error(db: Client) -> None:
    add_ana(db)
    row = db.execute("SELECT id, name FROM users").rows[0]

    with pytest.raises(IndexError):
        row[2]


def test_rows_can_be_copied_and_pickled(db: Client) -> None:
    add_ana(db)
    row = db.execute("SELECT id, name FROM users").rows[0]

    assert copy.copy(row) == copy.deepcopy(row) == pickle.loads(pickle.dumps(row)) == {"id": 1, "name": "Ana"}
    assert pickle.loads(pickle.dumps(row)).name == "Ana"


def test_rows_affected_counts_the_rows_a_statement_changed(db: Client) -> None:
    assert add_ana(db).rows_affected == 1
    db.execute("INSERT INTO users (name) VALUES ('Bea')")

    assert db.execute("UPDATE users SET email = 'x@example.com'").rows_affected == 2
    assert db.execute("UPDATE users SET email = NULL WHERE name = 'Nobody'").rows_affected == 0
    assert db.execute("DELETE FROM users WHERE name = 'Bea'").rows_affected == 1
    assert db.execute("SELECT * FROM users").rows_affected == 0


def test_last_insert_rowid_is_the_id_of_the_inserted_row(db: Client) -> None:
    first = add_ana(db)
    second = db.execute("INSERT INTO users (name) VALUES ('Bea')")

    assert first.last_insert_rowid == 1
    assert second.last_insert_rowid == 2
    assert db.execute("SELECT id FROM users WHERE name = 'Bea'").scalar() == second.last_insert_rowid


def test_scalar_is_the_first_value_of_the_first_row_or_none(db: Client) -> None:
    add_ana(db)

    assert db.execute("SELECT name, email FROM users").scalar() == "Ana"
    assert db.execute("SELECT name FROM users WHERE name = 'Nobody'").scalar() is None


def test_a_failing_statement_raises_the_drivers_error_and_the_client_stays_usable(db: Client) -> None:
    add_ana(db)

    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: users.name"):
        add_ana(db)

    assert names(db) == ["Ana"]
    assert db.stats()["errors"] == 1


# --- batch -----------------------------------------------------------------------


def test_batch_runs_every_statement_and_returns_one_result_for_each(db: Client) -> None:
    results = db.batch(
        [
            "INSERT INTO users (name) VALUES ('Ana')",
            ("INSERT INTO users (name) VALUES (?)", ["Bea"]),
            ("INSERT INTO users (name) VALUES (:name)", {"name": "Cid"}),
            "SELECT count(*) FROM users",
        ]
    )

    assert [r.last_insert_rowid for r in results[:3]] == [1, 2, 3]
    assert results[3].scalar() == 3
    assert names(db) == ["Ana", "Bea", "Cid"]
    assert db.stats()["batches"] == 1


def test_a_batch_with_a_failing_statement_leaves_nothing_behind(db: Client) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
        db.batch(
            [
                "INSERT INTO users (name) VALUES ('Ana')",
                "INSERT INTO users (name) VALUES ('Bea')",
                "INSERT INTO users (name) VALUES ('Ana')",
            ]
        )

    assert count(db) == 0
    assert db.stats()["in_transaction"] is False


def test_a_failing_batch_inside_a_transaction_keeps_the_transactions_own_work(db: Client) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO users (name) VALUES ('Ana')")
        with pytest.raises(sqlite3.IntegrityError):
            db.batch(["INSERT INTO users (name) VALUES ('Bea')", "INSERT INTO users (name) VALUES ('Ana')"])

    assert names(db) == ["Ana"]


# --- transactions ----------------------------------------------------------------


def test_a_transaction_block_commits_when_it_succeeds(db: Client, database: SQLiteMemoryDatabase) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO users (name) VALUES ('Ana')")
        tx.execute("INSERT INTO users (name) VALUES ('Bea')")

    assert not tx.active
    other = database.connect()
    try:
        assert other.execute("SELECT count(*) FROM users").fetchone() == (2,)
    finally:
        other.close()


def test_a_transaction_block_rolls_back_when_it_raises(db: Client) -> None:
    with pytest.raises(RuntimeError, match="payment declined"), db.transaction() as tx:
        tx.execute("INSERT INTO users (name) VALUES ('Ana')")
        raise RuntimeError("payment declined")

    assert count(db) == 0
    assert not tx.active


def test_an_explicit_transaction_commits(db: Client) -> None:
    tx = db.transaction()
    tx.execute("INSERT INTO users (name) VALUES ('Ana')")
    assert tx.active
    assert db.stats()["in_transaction"] is True

    tx.commit()

    assert not tx.active
    assert db.stats()["in_transaction"] is False
    assert names(db) == ["Ana"]


def test_an_explicit_transaction_rolls_back(db: Client) -> None:
    tx = db.transaction()
    tx.execute("INSERT INTO users (name) VALUES ('Ana')")

    tx.rollback()

    assert not tx.active
    assert count(db) == 0


def test_a_committed_transaction_cannot_be_used_again(db: Client) -> None:
    tx = db.transaction()
    tx.commit()

    expected = r"this transaction was already committed; begin a new one with client\.transaction\(\)"
    with pytest.raises(DbscopeError, match=expected):
        tx.execute("INSERT INTO users (name) VALUES ('Ana')")
    with pytest.raises(DbscopeError, match=expected):
        tx.commit()
    assert count(db) == 0


def test_a_rolled_back_transaction_cannot_be_used_again_but_rolling_back_twice_is_harmless(db: Client) -> None:
    tx = db.transaction()
    tx.rollback()
    tx.rollback()

    expected = r"this transaction was already rolled back; begin a new one with client\.transaction\(\)"
    with pytest.raises(DbscopeError, match=expected):
        tx.execute("INSERT INTO users (name) VALUES ('Ana')")
    with pytest.raises(DbscopeError, match=expected):
        tx.commit()


def test_a_nested_transaction_is_a_savepoint_whose_rollback_keeps_the_outer_work(db: Client) -> None:
    with db.transaction() as outer:
        outer.execute("INSERT INTO users (name) VALUES ('Ana')")
        with pytest.raises(RuntimeError, match="inner failed"), db.transaction() as inner:
            inner.execute("INSERT INTO users (name) VALUES ('Bea')")
            assert names(db) == ["Ana", "Bea"]
            raise RuntimeError("inner failed")
        outer.execute("INSERT INTO users (name) VALUES ('Cid')")

    assert names(db) == ["Ana", "Cid"]
    assert repr(inner) == "<Transaction rolled back savepoint=dbscope_sp_1>"


def test_a_released_savepoint_is_undone_when_the_outer_transaction_rolls_back(db: Client) -> None:
    outer = db.transaction()
    with db.transaction() as inner:
        inner.execute("INSERT INTO users (name) VALUES ('Ana')")
    assert not inner.active and outer.active

    outer.rollback()

    assert count(db) == 0
    assert db.stats()["in_transaction"] is False


def test_a_failed_commit_leaves_the_client_usable_and_no_transaction_open(db: Client) -> None:
    db.execute("PRAGMA foreign_keys = ON")

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"), db.transaction() as tx:
        tx.execute("INSERT INTO orders (user_id, total) VALUES (999, 10)")  # deferred: fails at COMMIT

    assert not tx.active
    assert db.stats()["in_transaction"] is False
    assert count(db, "orders") == 0
    with db.transaction() as tx:  # BEGIN works again: SQLite's own transaction was ended too
        user_id = tx.execute("INSERT INTO users (name) VALUES ('Ana')").last_insert_rowid
        tx.execute("INSERT INTO orders (user_id, total) VALUES (?, 10)", [user_id])
    assert count(db, "orders") == 1
    assert run_in_thread(lambda: db.execute("SELECT 1")) == []  # nobody holds the client any more


def test_an_explicit_commit_that_fails_ends_the_transaction(db: Client) -> None:
    db.execute("PRAGMA foreign_keys = ON")
    tx = db.transaction()
    tx.execute("INSERT INTO orders (user_id, total) VALUES (999, 10)")

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
        tx.commit()

    assert not tx.active
    with pytest.raises(DbscopeError, match="this transaction was already rolled back"):
        tx.commit()
    assert count(db, "orders") == 0
    assert db.health_check() is True


# --- connect, close, health, stats -----------------------------------------------


def test_connect_gives_a_dbapi_connection_to_the_same_database(db: Client) -> None:
    conn = db.connect()
    conn.execute("INSERT INTO users (name) VALUES ('Ana')")
    conn.commit()

    assert names(db) == ["Ana"]
    assert db.stats()["open_connections"] == 2
    assert db.stats()["connections_opened"] == 2


def test_close_closes_the_connections_from_connect(db: Client) -> None:
    first, second = db.connect(), db.connect()

    assert db.close() is True

    for conn in (first, second):
        with pytest.raises(sqlite3.ProgrammingError, match="Cannot operate on a closed database"):
            conn.execute("SELECT 1")
    assert db.stats()["open_connections"] == 0


def test_close_is_idempotent_and_sets_closed(db: Client) -> None:
    assert db.closed is False

    assert db.close() is True
    assert db.close() is True

    assert db.closed is True
    assert repr(db) == f"<Client scope={SCOPE_ID} closed>"


def test_a_client_closes_at_the_end_of_a_with_block(database: SQLiteMemoryDatabase) -> None:
    with Client(database.connect, database.dialect) as client:
        assert client.health_check() is True

    assert client.closed
    with pytest.raises(ClientClosedError, match=r"^this client is closed: it was closed at .*test_client\.py:"):
        client.execute("SELECT 1")


def test_health_check_is_true_while_open_and_false_after_close(db: Client) -> None:
    assert db.health_check() is True

    db.close()

    assert db.health_check() is False


def test_stats_are_a_plain_dict_of_named_counters(db: Client) -> None:
    add_ana(db)
    with db.transaction() as tx:
        tx.execute("SELECT 1")
    db.batch(["SELECT 1"])
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM no_such_table")

    stats = db.stats()

    assert set(stats) == {
        "scope_id", "test_name", "state", "open_connections", "in_transaction", "age_ms",
        "statements", "transactions", "batches", "errors", "connections_opened",
    }  # fmt: skip
    assert stats["scope_id"] == SCOPE_ID
    assert stats["test_name"] == TEST_NAME
    assert stats["state"] == "open"
    assert stats["open_connections"] == 1
    assert stats["in_transaction"] is False
    assert stats["age_ms"] >= 0
    assert stats["statements"] >= 3
    assert (stats["transactions"], stats["batches"], stats["errors"], stats["connections_opened"]) == (2, 1, 1, 1)
    db.close()
    assert db.stats()["state"] == "closed"


CLIENT_METHODS: dict[str, Callable[[Client], object]] = {
    "execute": lambda db: db.execute("SELECT 1"),
    "batch": lambda db: db.batch(["SELECT 1"]),
    "transaction": lambda db: db.transaction(),
    "connect": lambda db: db.connect(),
}


@pytest.mark.parametrize("method", CLIENT_METHODS.values(), ids=CLIENT_METHODS.keys())
def test_every_method_of_a_closed_client_raises_client_closed_error_saying_where_it_was_closed(
    db: Client, method: Callable[[Client], object]
) -> None:
    line = line_of_next_statement()
    db.close()

    expected = (
        rf"the client of scope {SCOPE_ID} \(test '{TEST_NAME}'\) is closed: "
        rf"it was closed at {re.escape(__file__)}:{line}\. "
    )
    with pytest.raises(ClientClosedError, match=expected):
        method(db)


def test_a_transaction_of_a_closed_client_raises_client_closed_error(db: Client) -> None:
    tx = db.transaction()
    db.close()

    with pytest.raises(ClientClosedError, match=f"scope {SCOPE_ID}"):
        tx.execute("SELECT 1")
    assert not tx.active


def test_a_client_closed_by_its_scope_says_dbscope_closed_it_at_the_end_of_the_test(migrations_dir: Path) -> None:
    with IsolationManager("sqlite://", migrations=str(migrations_dir)) as manager:
        with manager.scope("checkout works") as scope:
            db = scope.client()
            add_ana(db)
            scope_id = scope.id

        assert db.closed
        with pytest.raises(
            ClientClosedError,
            match=rf"the client of scope {scope_id} \(test 'checkout works'\) is closed: it was closed by dbscope",
        ):
            db.execute("SELECT 1")


# --- threads ---------------------------------------------------------------------


def test_fifty_threads_inserting_through_one_client_give_exactly_a_thousand_rows(db: Client) -> None:
    start = threading.Barrier(50)
    errors: list[Exception] = []

    def insert_twenty(worker: int) -> None:
        try:
            start.wait(10)
            for i in range(20):
                db.execute("INSERT INTO users (name) VALUES (?)", [f"user {worker}-{i}"])
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=insert_twenty, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert count(db) == 1000
    assert db.execute("SELECT count(DISTINCT name) FROM users").scalar() == 1000


def test_a_transaction_in_one_thread_holds_back_other_threads_statements_until_it_ends(db: Client) -> None:
    tx = db.transaction()
    tx.execute("INSERT INTO users (name) VALUES ('in the transaction')")
    about_to_insert = threading.Event()
    order: list[str] = []

    def insert_from_another_thread() -> None:
        about_to_insert.set()
        db.execute("INSERT INTO users (name) VALUES ('from another thread')")
        order.append("other thread inserted")

    other = threading.Thread(target=insert_from_another_thread, daemon=True)
    other.start()
    assert about_to_insert.wait(10)
    other.join(0.2)  # an observation, not synchronization: the result below holds however long this takes
    assert other.is_alive(), "the other thread's statement ran inside this thread's transaction"

    order.append("transaction rolled back")
    tx.rollback()
    other.join(10)

    assert order == ["transaction rolled back", "other thread inserted"]
    assert names(db) == ["from another thread"]  # it did not run inside the rolled back transaction


def test_close_interrupts_a_statement_running_in_another_thread(db: Client, running: threading.Event) -> None:
    raised: list[Exception] = []

    def count_to_a_billion() -> None:
        try:
            db.execute(COUNT_TO_A_BILLION)
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            raised.append(exc)

    worker = threading.Thread(target=count_to_a_billion, daemon=True)
    worker.start()
    assert running.wait(10)

    started = time.monotonic()
    db.close(timeout=0.2)
    took = time.monotonic() - started
    worker.join(10)

    assert not worker.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], sqlite3.OperationalError)
    assert str(raised[0]) == "interrupted"
    assert db.closed
    assert took < 0.2 + 1.0 + 2.0  # the timeout, the grace after the interrupt, and slack


def test_close_gives_up_on_a_transaction_left_idle_in_another_thread(db: Client) -> None:
    began, closed = threading.Event(), threading.Event()
    raised: list[Exception] = []

    def hold_a_transaction() -> None:
        try:
            with db.transaction() as tx:
                tx.execute("INSERT INTO users (name) VALUES ('Ana')")
                began.set()
                closed.wait(10)
                tx.execute("INSERT INTO users (name) VALUES ('Bea')")
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            raised.append(exc)

    worker = threading.Thread(target=hold_a_transaction, daemon=True)
    worker.start()
    assert began.wait(10)

    started = time.monotonic()
    closed_cleanly = db.close(timeout=0.2)
    took = time.monotonic() - started
    closed.set()
    worker.join(10)

    assert closed_cleanly is False
    assert took < 0.2 + 0.2 + 2.0
    assert not worker.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], ClientClosedError)
    with pytest.raises(ClientClosedError, match=f"scope {SCOPE_ID}"):
        db.execute("SELECT 1")


def test_a_transaction_never_ended_before_close_does_not_block_other_threads(db: Client) -> None:
    tx = db.transaction()
    tx.execute("INSERT INTO users (name) VALUES ('Ana')")
    db.close()

    raised = run_in_thread(lambda: db.execute("SELECT 1"))

    assert len(raised) == 1
    assert isinstance(raised[0], ClientClosedError)


def test_a_commit_after_close_ends_the_transaction_and_frees_the_client_for_other_threads(db: Client) -> None:
    tx = db.transaction()
    tx.execute("INSERT INTO users (name) VALUES ('Ana')")
    db.close()

    with pytest.raises(ClientClosedError, match=f"scope {SCOPE_ID}"):
        tx.commit()
    raised = run_in_thread(lambda: db.transaction())

    assert not tx.active
    assert len(raised) == 1
    assert isinstance(raised[0], ClientClosedError)
