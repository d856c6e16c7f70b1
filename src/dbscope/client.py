"""Client, Transaction and ResultSet: a small, thread-safe API over a DB-API connection.

The client serializes its statements with a lock, so threads can share one client. A
transaction holds that lock from begin to commit/rollback; nested transactions (and
every transaction under the ``rollback`` strategy) become savepoints. After its scope
ends, any use raises :class:`~dbscope.ClientClosedError` saying which scope, which test
and where it was closed, never the driver's own "closed" error.

Statements take SQLite's placeholders on every backend: ``?`` with a sequence of
arguments, ``:name`` with a mapping (the PostgreSQL dialect translates them for psycopg).
A statement that fails while using psycopg's ``%s`` or ``%(name)s`` instead, and none of
those, raises a :class:`~dbscope.DbscopeError` that says so, from the driver's error.

The frames of a statement's path (``execute``, ``batch``, a transaction's methods) set
pytest's ``__tracebackhide__``, and the driver's own frames (psycopg's) are cut from its
error: a failing statement shows the test's own call last, with the driver's message.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from . import sqlscan
from .backends.sqlite import DIALECT as SQLITE_DIALECT
from .errors import ClientClosedError, DbscopeError

__all__ = ["Client", "ClientState", "ResultSet", "Row", "Transaction"]

log = logging.getLogger("dbscope.database")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

Args = Sequence[Any] | Mapping[str, Any]
StatementLike = str | tuple[str, Args]


class Row(Sequence[Any]):
    """One result row, readable by index (``row[0]``) and by column name (``row["name"]``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple[Any, ...], index: Mapping[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise KeyError(f"no column {key!r}; columns are {', '.join(self._index)}") from None
        return self._values[key]

    def __getattr__(self, name: str) -> Any:
        if name in Row.__slots__:  # not set yet (copy, pickle): no recursion through self._index
            raise AttributeError(name)
        try:
            return self._values[self._index[name]]
        except KeyError:
            raise AttributeError(f"no column {name!r}; columns are {', '.join(self._index)}") from None

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values
        if isinstance(other, tuple):
            return self._values == other
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def as_dict(self) -> dict[str, Any]:
        return {name: self._values[i] for name, i in self._index.items()}

    def __repr__(self) -> str:
        return f"Row({self.as_dict()!r})"


class ResultSet:
    """The outcome of one statement: rows, column names, affected rows, last row id."""

    __slots__ = ("columns", "last_insert_rowid", "rows", "rows_affected")

    def __init__(
        self, rows: list[Row], columns: tuple[str, ...], rows_affected: int, last_insert_rowid: int | None
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.rows_affected = rows_affected
        self.last_insert_rowid = last_insert_rowid

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def scalar(self) -> Any:
        """The first column of the first row, or None when there are no rows."""
        return self.rows[0][0] if self.rows else None

    def __repr__(self) -> str:
        return f"<ResultSet rows={len(self.rows)} columns={self.columns} rows_affected={self.rows_affected}>"


class ClientState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


def _caller_location() -> str:
    """File and line of the nearest caller outside dbscope, for 'closed at' messages."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}"
    return "inside dbscope"


class Client:
    """A database client bound to one scope's database.

    Safe to share between threads. Used after close (explicitly, or by its scope
    ending) it raises :class:`ClientClosedError`.
    """

    def __init__(
        self,
        connect: Callable[..., Any],
        dialect: Any = None,
        *,
        scope_id: str = "",
        test_name: str = "",
        close_timeout: float = 5.0,
        connection: Any = None,
        in_outer_transaction: bool = False,
        lock: threading.RLock | None = None,
    ) -> None:
        self._connect = connect
        self._dialect = dialect if dialect is not None else SQLITE_DIALECT  # sqlite3 takes ?/:name as they are
        self.scope_id = scope_id
        self.test_name = test_name
        self.close_timeout = close_timeout
        self._owns_connection = connection is None
        self._conn = connect(autocommit=True) if connection is None else connection
        self._lock = lock if lock is not None else threading.RLock()
        make_guard = getattr(self._dialect, "signal_guard", None)  # SQLite: Ctrl-C stops a long statement
        self._guard: Any = make_guard() if make_guard is not None else None
        self._depth = 1 if in_outer_transaction else 0
        self._base_depth = self._depth
        self._state = ClientState.OPEN
        self._closed_at: str | None = None
        self._extra: list[Any] = []
        self.close_problems: list[str] = []  # why close() returned False, for the report
        # run once the client is closed, however that happens (an AsyncClient stops its worker thread)
        self._after_close: list[Callable[[], None]] = []
        self._counts = {"statements": 0, "transactions": 0, "batches": 0, "errors": 0, "connections_opened": 1}
        self._created = time.monotonic()

    # -- state ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._state is ClientState.CLOSED

    @property
    def state(self) -> ClientState:
        return self._state

    def _check_open(self) -> None:
        __tracebackhide__ = True
        if self._state is ClientState.CLOSED:
            raise ClientClosedError(self._closed_message())

    def _closed_message(self) -> str:
        client = f"the client of scope {self.scope_id}" if self.scope_id else "this client"
        test = f" (test {self.test_name!r})" if self.test_name else ""
        return (
            f"{client}{test} is closed: it was closed {self._closed_at}. "
            "A client lives only as long as its test's scope; ask for the `db` fixture in the test "
            "that uses it (or call get_scoped_client() for the current scope) instead of keeping "
            "a client across tests."
        )

    # -- statements ----------------------------------------------------------------

    def execute(self, sql: str, args: Args = ()) -> ResultSet:
        """Run one statement with positional (``?``) or named (``:name``) arguments, on every backend."""
        __tracebackhide__ = True  # pytest shows the caller's line, not dbscope's frames
        self._check_open()  # before the lock: a transaction left open by a closed client still holds it
        with self._lock:
            self._check_open()
            return self._run(sql, args)

    def _run(self, sql: str, args: Args) -> ResultSet:
        __tracebackhide__ = True
        statement, driver_args = self._dialect.translate(sql, args)
        cursor = self._conn.cursor()
        guard = self._guard
        if guard is not None:
            guard.arm(self._conn)
        try:
            cursor.execute(statement, driver_args)
            self._counts["statements"] += 1
            description = cursor.description
            if description:
                columns = tuple(d[0] for d in description)
                index = {name: i for i, name in enumerate(columns)}
                rows = [Row(tuple(r), index) for r in cursor.fetchall()]
            else:
                columns, rows = (), []
            affected = cursor.rowcount if cursor.rowcount and cursor.rowcount > 0 else 0
            return ResultSet(rows, columns, affected, getattr(cursor, "lastrowid", None))
        except Exception as exc:
            self._counts["errors"] += 1
            if guard is not None:
                guard.reraise()  # a signal handler's exception (Ctrl-C, a timeout) beats "interrupted"
            exc.with_traceback(_without_driver_frames(exc.__traceback__))
            placeholder = sqlscan.psycopg_placeholder(sql) if args else None
            if placeholder is not None:
                raise DbscopeError(_placeholder_message(placeholder)) from exc
            raise
        finally:
            if guard is not None:
                guard.disarm(self._conn)
            cursor.close()

    def batch(self, statements: Iterable[StatementLike]) -> list[ResultSet]:
        """Run statements in one transaction: all of them take effect, or none does."""
        __tracebackhide__ = True
        items = [(s, ()) if isinstance(s, str) else (s[0], s[1]) for s in statements]
        self._check_open()
        with self._lock:
            self._check_open()
            self._counts["batches"] += 1
            results = []
            with Transaction(self) as tx:
                for sql, args in items:  # a loop, not a comprehension: no frame of its own to hide
                    results.append(tx.execute(sql, args))
            return results

    def transaction(self) -> Transaction:
        """Begin a transaction: use it as a context manager, or call commit()/rollback()."""
        __tracebackhide__ = True
        self._check_open()
        return Transaction(self)

    def connect(self) -> Any:
        """A new DB-API connection to the same database, closed when the scope ends."""
        self._check_open()
        with self._lock:
            self._check_open()
            conn = self._connect(autocommit=False)
            self._extra.append(conn)
            self._counts["connections_opened"] += 1
            return conn

    def health_check(self) -> bool:
        """True when the client is open and its database answers ``SELECT 1``."""
        if self.closed:
            return False
        try:
            return bool(self.execute("SELECT 1").scalar() == 1)
        except Exception:
            return False

    def stats(self) -> dict[str, Any]:
        """Counters of this client, as a plain dict."""
        return {
            "scope_id": self.scope_id,
            "test_name": self.test_name,
            "state": self._state.value,
            "open_connections": 0 if self.closed else 1 + len(self._extra),
            "in_transaction": self._depth > self._base_depth,
            "age_ms": round((time.monotonic() - self._created) * 1000, 3),
            **self._counts,
        }

    # -- closing -------------------------------------------------------------------

    def close(self, timeout: float | None = None, *, reason: str | None = None) -> bool:
        """Close the client and every connection it opened; True if all closed cleanly.

        Waits at most ``timeout`` seconds (default: the scope's close timeout) for a
        statement running in another thread, then interrupts it. A second close is a no-op.
        """
        if self._state is ClientState.CLOSED:
            return True
        limit = self.close_timeout if timeout is None else timeout
        acquired = self._lock.acquire(timeout=limit)
        interrupted = False
        if not acquired:
            log.warning("client of scope %s busy at close; interrupting its statement", self.scope_id)
            _interrupt(self._conn)
            interrupted = True
            self.close_problems.append(f"a statement was still running after {limit:g} s; interrupted it")
            acquired = self._lock.acquire(timeout=min(limit, 1.0))
        try:
            if self.closed:  # closed by another thread while this one waited
                return True
            self._state = ClientState.CLOSED
            self._closed_at = reason or f"at {_caller_location()}"
            ok = acquired and not interrupted  # an interrupted statement is not a clean close
            for conn in [*self._extra, self._conn] if self._owns_connection else self._extra:
                ok = _close_quietly(conn, self.scope_id, self.close_problems) and ok
            self._extra.clear()
            for callback in self._after_close:
                try:
                    callback()
                except Exception as exc:
                    log.warning("error after closing the client of scope %s: %s", self.scope_id, exc)
            return ok
        finally:
            if acquired:
                self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client scope={self.scope_id} {self._state.value}>"


def _without_driver_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` cut before its first frame outside dbscope: the driver's (psycopg's ``raise``) say nothing to a user."""
    head = tb
    while tb is not None and tb.tb_next is not None:
        if not os.path.abspath(tb.tb_next.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR):
            tb.tb_next = None
            break
        tb = tb.tb_next
    return head


def _placeholder_message(placeholder: str) -> str:
    """Why a statement written with psycopg's placeholders failed, and what to write instead."""
    if placeholder.startswith("%("):
        ours = f":{placeholder[2:-2]} in place of {placeholder}, with a mapping of arguments, or ? with a sequence"
    else:
        ours = f"? in place of {placeholder}, with a sequence of arguments, or :name with a mapping"
    return (
        f"the statement uses {placeholder}, psycopg's placeholder style; dbscope's client takes SQLite's "
        f"on every backend (it translates them for PostgreSQL): write {ours}"
    )


def _interrupt(conn: Any) -> None:
    for name in ("interrupt", "cancel"):
        method = getattr(conn, name, None)
        if method is not None:
            try:
                method()
            except Exception:  # the statement may have just finished
                pass
            return


def _close_quietly(conn: Any, scope_id: str, problems: list[str]) -> bool:
    try:
        conn.close()
        return True
    except Exception as exc:
        log.warning("error closing a connection of scope %s: %s", scope_id, exc)
        problems.append(f"error closing its connection {conn!r}: {type(exc).__name__}: {exc}")
        return False


class TransactionState(enum.Enum):
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"


class Transaction:
    """A transaction on a client: a savepoint when nested or under the rollback strategy.

    It holds the client's lock until it ends, so other threads wait rather than
    interleave their statements with it. End it in the thread that began it.
    """

    def __init__(self, client: Client) -> None:
        __tracebackhide__ = True
        self._client = client
        client._lock.acquire()
        try:
            client._check_open()
            self._savepoint = f"dbscope_sp_{client._depth}" if client._depth > 0 else None
            client._run(f"SAVEPOINT {self._savepoint}" if self._savepoint else client._dialect.begin(), ())
            client._depth += 1
            client._counts["transactions"] += 1
        except BaseException:
            client._lock.release()
            raise
        self._state = TransactionState.ACTIVE

    @property
    def active(self) -> bool:
        return self._state is TransactionState.ACTIVE

    def _check_active(self) -> None:
        __tracebackhide__ = True
        if self._client.closed and self._state is TransactionState.ACTIVE:
            # its connection is gone and the transaction with it: give the lock back, or
            # every other thread would wait for it forever instead of getting ClientClosedError
            self._finish(TransactionState.ROLLED_BACK)
        self._client._check_open()
        if self._state is not TransactionState.ACTIVE:
            raise DbscopeError(
                f"this transaction was already {self._state.value}; begin a new one with client.transaction()"
            )

    def execute(self, sql: str, args: Args = ()) -> ResultSet:
        __tracebackhide__ = True
        self._check_active()
        return self._client._run(sql, args)

    def commit(self) -> None:
        __tracebackhide__ = True
        self._check_active()
        self._end(f"RELEASE SAVEPOINT {self._savepoint}" if self._savepoint else "COMMIT", TransactionState.COMMITTED)

    def rollback(self) -> None:
        __tracebackhide__ = True
        if self._state is not TransactionState.ACTIVE:
            return
        if self._client.closed:
            self._finish(TransactionState.ROLLED_BACK)
            return
        if self._savepoint:
            self._end(f"ROLLBACK TO SAVEPOINT {self._savepoint}", None)
            self._end(f"RELEASE SAVEPOINT {self._savepoint}", TransactionState.ROLLED_BACK)
        else:
            self._end("ROLLBACK", TransactionState.ROLLED_BACK)

    def _end(self, sql: str, state: TransactionState | None) -> None:
        __tracebackhide__ = True
        try:
            self._client._run(sql, ())
        except BaseException:
            if state is not None:
                self._undo_quietly()
                self._finish(TransactionState.ROLLED_BACK)
            raise
        if state is not None:
            self._finish(state)

    def _undo_quietly(self) -> None:
        """After a failed COMMIT/RELEASE the transaction may still be open: roll it back."""
        undo = (
            [f"ROLLBACK TO SAVEPOINT {self._savepoint}", f"RELEASE SAVEPOINT {self._savepoint}"]
            if self._savepoint
            else ["ROLLBACK"]
        )
        for sql in undo:
            try:
                self._client._run(sql, ())
            except Exception:
                pass

    def _finish(self, state: TransactionState) -> None:
        self._state = state
        self._client._depth -= 1
        self._client._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        __tracebackhide__ = True
        if self._state is not TransactionState.ACTIVE:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        return f"<Transaction {self._state.value} savepoint={self._savepoint}>"
