"""Joining: under the rollback strategy, the application's connections are the test's connection.

A rollback scope runs inside one transaction on dbscope's connection to the worker's
database; rolling it back undoes the test. Work the application does through a
connection of its own escapes that (its commits are real), so under ``rollback`` the
application is given the test's connection instead, behind a proxy that turns its
transactions into savepoints of the test's transaction::

    JoinedDatabase            one per rollback scope: the test's connection, its lock, the savepoints
     ├── JoinedConnection     a DB-API connection for the app: BEGIN/COMMIT/ROLLBACK become
     │    │                   SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT
     │    └── JoinedCursor    one statement at a time under the scope's lock, its rows read under it
     ├── engine(), async_engine(), session(), async_session()   SQLAlchemy on those connections
     └── bind_app()           the app's own engines and sessionmakers, rebound until the scope ends

Code the test starts (a test client's server thread, a thread pool, an asyncio task) shares
the connection one statement at a time: each statement holds the scope's lock, which a
``db`` transaction holds from its start to its end. A transaction of one connection may
end while another's, begun later, is still open: its release waits for that one (the
savepoints nest), so each commit and rollback undoes or keeps its own work. When the
scope ends every joined connection is closed; a thread or task still using one gets a
:class:`~dbscope.ClientClosedError` naming the test that owned it.

SQLAlchemy is imported only when an engine or session is asked for (``dbscope[sqlalchemy]``).
An async engine joins with its driver's shape over joined connections, each call run in a
worker thread: aiosqlite's own connection on SQLite, an :class:`AsyncJoinedConnection` in
aiomysql's shape on MariaDB and in psycopg's on PostgreSQL. asyncpg speaks its own protocol and
cannot use psycopg's connection, so an app's ``postgresql+asyncpg://`` engine runs psycopg's
async dialect for the length of the scope (its URL, options and engine events stay its own;
its pool's connect listeners, written for asyncpg, do not run then).

A sync SQLAlchemy engine the settings do not name joins too (:func:`install_engine_hooks`):
one the app builds lazily inside the test, or rebuilds at every scope boundary, gets a joined
connection whenever it connects to the test's database with the test's driver, and a pooled
connection of an ended scope is replaced at its next checkout. An explicit transaction of the
app (``BEGIN``/``BEGIN IMMEDIATE`` sent as text with ``isolation_level = None``, or ``begin()``)
is a savepoint that holds the test's connection until it ends, so concurrent writers queue as
SQLite's write lock makes them; per-connection callbacks (``set_progress_handler``) apply to the
app connection's own statements only, never staying on the test's connection.

What cannot join raises :class:`JoinUnsupportedError`: a plain DB-API
connection the application opens itself with ``sqlite3.connect()`` or ``psycopg.connect()``,
whose commits dbscope notices and undoes by restoring the database instead; so is an engine
on another driver than the test's connection (psycopg2 where dbscope uses psycopg).
"""

from __future__ import annotations

import enum
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

from .errors import ClientClosedError, ConfigError, DbscopeError, JoinUnsupportedError
from .urls import mask_password

__all__ = ["AppBinding", "JoinedConnection", "JoinedCursor", "JoinedDatabase"]

log = logging.getLogger("dbscope.database")

#: How long a statement waits for the test's connection while another thread's statement (or
#: a ``db`` transaction) holds it, before it fails naming the test instead of hanging.
LOCK_WAIT_S = 10.0

#: The application's own transaction control, as SQL text (``conn.execute("BEGIN")``, SQLAlchemy's
#: "begin" event recipe for pysqlite): handled as the DB-API calls, never sent as written.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(?:(?P<begin>BEGIN|START\s+TRANSACTION)|(?P<commit>COMMIT|END)|(?P<rollback>ROLLBACK|ABORT))"
    r"(?:\s+(?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE|ISOLATION\s+LEVEL\s+[A-Z ]+|READ\s+[A-Z]+))*\s*;?\s*$",
    re.IGNORECASE,
)


class JoinState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class JoinedDatabase:
    """The test's connection, lent to the application for one rollback scope.

    ``conn`` is dbscope's DB-API connection inside the scope's transaction (autocommit at
    the driver: every BEGIN it sees is dbscope's); ``lock`` the scope's lock, which the
    scope's clients share. ``url`` and ``async_url`` are the database's SQLAlchemy URLs.
    """

    def __init__(
        self,
        conn: Any,
        lock: threading.RLock,
        *,
        url: str,
        async_url: str,
        test_name: str,
        scope_id: str,
        lock_wait: float = LOCK_WAIT_S,
    ) -> None:
        self.conn = conn
        self.lock = lock
        self.url = url
        self.async_url = async_url
        self.test_name = test_name
        self.scope_id = scope_id
        self.lock_wait = lock_wait
        self._state = JoinState.OPEN
        self._closed_reason = ""
        self._serial = 0
        self._stack: list[str] = []  # open savepoints of joined connections, innermost last
        self._released: set[str] = set()  # committed while one begun later was still open
        self._undone: set[str] = set()  # rolled back with an enclosing savepoint of another connection
        self._connections: list[JoinedConnection] = []
        self._engines: list[Any] = []
        self._bindings: list[AppBinding] = []
        self._aio: list[Any] = []  # aiosqlite connections: their threads are stopped at close
        self._books = threading.Lock()  # for the two lists above; never the scope's lock, which a test may hold
        self._targets: dict[tuple[str, str], tuple[str, ...] | None] = {}  # per SQLAlchemy dialect: what it connects to
        _open_joined(self)

    # -- state -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._state is JoinState.CLOSED

    def check_open(self) -> None:
        if self._state is JoinState.CLOSED:
            raise ClientClosedError(
                f"a connection joined to the transaction of test {self.test_name!r} (scope {self.scope_id}) was used "
                f"after that test ended: it was closed {self._closed_reason}. A thread or task the test started (a "
                "test client's server thread, a thread pool, an asyncio task) outlived it; wait for it (join the "
                "thread, await the task, close the test client) before the test returns."
            )

    @contextmanager
    def statement(self) -> Iterator[None]:
        """Hold the test's connection for one statement (or savepoint command)."""
        self.acquire()
        try:
            self.check_open()
            yield
        finally:
            self.lock.release()

    def acquire(self) -> None:
        """Take the scope's lock (for a statement, or an explicit transaction), or fail naming the test."""
        self.check_open()
        if not self.lock.acquire(timeout=self.lock_wait):
            raise DbscopeError(
                f"the connection of test {self.test_name!r} (scope {self.scope_id}) was held by another thread for "
                f"more than {self.lock_wait:g} s (a `db` transaction, or a transaction the app began with BEGIN, "
                "left open while code in another thread waits for it?); end the transaction before calling the "
                "app, or give that code @pytest.mark.dbscope(strategy='clone')"
            )

    def _run(self, sql: str) -> None:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    # -- savepoints (called with the lock held) --------------------------------------------

    def open_savepoint(self) -> str:
        self._serial += 1
        name = f"dbscope_join_{self._serial}"
        self._run(f"SAVEPOINT {name}")
        self._stack.append(name)
        return name

    def release(self, name: str) -> None:
        self._check_savepoint(name)
        if self._stack[-1] != name:
            self._released.add(name)  # releasing it now would release the later ones too
            return
        self._stack.pop()
        self._release_run(name)

    def rollback_to(self, name: str) -> None:
        self._check_savepoint(name)
        index = self._stack.index(name)
        self._run(f"ROLLBACK TO SAVEPOINT {name}")
        self._run(f"RELEASE SAVEPOINT {name}")
        for inner in self._stack[index + 1 :]:
            if inner in self._released:
                self._released.discard(inner)
            else:
                self._undone.add(inner)
        del self._stack[index:]
        if self._stack and self._stack[-1] in self._released:
            self._release_run(None)

    def _release_run(self, released: str | None) -> None:
        """Release ``released`` and the committed savepoints now innermost, with one statement."""
        lowest = released
        while self._stack and self._stack[-1] in self._released:
            lowest = self._stack.pop()
            self._released.discard(lowest)
        if lowest is not None:
            self._run(f"RELEASE SAVEPOINT {lowest}")

    def _check_savepoint(self, name: str) -> None:
        if name in self._undone:
            self._undone.discard(name)
            raise DbscopeError(
                f"this connection's transaction in test {self.test_name!r} was undone: it began inside another "
                "connection's transaction on the test's shared connection, and that one rolled back"
            )
        if name not in self._stack:
            raise DbscopeError(
                f"savepoint {name} of test {self.test_name!r} is gone: a statement sent through another connection "
                "ended it (a COMMIT or ROLLBACK TO SAVEPOINT on the test's connection)"
            )

    def is_target(self, dialect: Any, target: tuple[str, ...]) -> bool:
        """Whether a SQLAlchemy dialect connecting to ``target`` (see :func:`_connect_target`) reaches
        this test's database with the driver of the test's connection."""
        key = (dialect.name, dialect.driver)
        if key not in self._targets:
            from sqlalchemy.engine import make_url

            mine = make_url(self.url)
            ours: tuple[str, ...] | None = None
            if (mine.get_backend_name(), mine.get_driver_name()) == key:
                try:
                    ours = _connect_target(dialect, *dialect.create_connect_args(mine))
                except Exception:  # a dialect that cannot read our URL: never ours
                    ours = None
            self._targets[key] = ours
        return self._targets[key] == target

    # -- connections ------------------------------------------------------------------

    def connect(self) -> JoinedConnection:
        """A new DB-API connection for the application, joined to the test's transaction."""
        self.check_open()
        connection = JoinedConnection(self)
        with self._books:
            self._connections = [c for c in self._connections if not c.closed]
            self._connections.append(connection)
        return connection

    # -- SQLAlchemy ---------------------------------------------------------------------

    def engine(self) -> Any:
        """A SQLAlchemy Engine whose connections are joined connections (one per checkout)."""
        sqlalchemy = _sqlalchemy("a joined engine")
        self.check_open()
        engine = sqlalchemy.create_engine(
            self.url, creator=self.connect, poolclass=sqlalchemy.pool.NullPool, **_dialect_options(self.url)
        )
        self._engines.append(engine)
        return engine

    def async_engine(self) -> Any:
        """A SQLAlchemy AsyncEngine on joined connections: aiosqlite's dialect on SQLite, psycopg's
        async dialect on PostgreSQL (each checkout an :class:`AsyncJoinedConnection`)."""
        _sqlalchemy("a joined async engine")
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        self.check_open()
        creator = self.async_creator()
        url = self.joined_async_url()
        engine = create_async_engine(url, async_creator=creator, poolclass=NullPool, **_dialect_options(url))
        self._engines.append(engine.sync_engine)
        return engine

    def joined_async_url(self) -> str:
        """The async dialect whose connections can be joined ones: on PostgreSQL psycopg's (asyncpg
        speaks its own protocol, and the test's connection is psycopg's), elsewhere the async URL's."""
        if not self.url.startswith("postgresql"):
            return self.async_url
        from sqlalchemy.engine import make_url

        return str(make_url(self.url).set(drivername="postgresql+psycopg_async").render_as_string(hide_password=False))

    def async_creator(self) -> Callable[[], Any]:
        """What ``create_async_engine(async_creator=...)`` takes: an async connection on a joined one."""
        backend = self.async_url.partition(":")[0]
        if backend.startswith(("postgresql", "mysql")):
            shape = AsyncJoinedConnection.shaped_for(backend)

            async def joined_async() -> AsyncJoinedConnection:
                self.check_open()
                return shape(self.connect())

            return joined_async
        if not backend.startswith("sqlite"):
            driver = backend.partition("+")[2] or backend
            raise JoinUnsupportedError(
                f"an async engine cannot join the transaction of test {self.test_name!r}: {driver} opens "
                f"connections of its own and cannot share dbscope's connection to {self.url.partition(':')[0]} "
                "databases. Under the rollback strategy use a sync Engine or Session there (the db_engine and "
                "db_session fixtures), or run async code under dbscope_strategy = reset, which restores what it "
                "commits."
            )
        try:
            import aiosqlite
        except ImportError as exc:
            raise JoinUnsupportedError(
                f"a joined async engine on SQLite needs aiosqlite ({exc}): pip install aiosqlite"
            ) from None

        def creator() -> Any:
            self.check_open()
            connection = aiosqlite.Connection(self.connect, 64)  # type: ignore[arg-type]  # sqlite3-like
            connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
            with self._books:
                self._aio.append(connection)
            return connection

        return creator

    def session(self, **options: Any) -> Any:
        """A SQLAlchemy Session joined to the test's transaction (its commits are savepoints)."""
        from sqlalchemy.orm import Session

        return Session(bind=self.engine(), **options)

    def async_session(self, **options: Any) -> Any:
        from sqlalchemy.ext.asyncio import AsyncSession

        return AsyncSession(bind=self.async_engine(), **options)

    def bind_app(
        self, *, engines: Sequence[str] = (), sessions: Sequence[str] = (), origins: dict[str, str] | None = None
    ) -> AppBinding:
        """Rebind the application's engines and sessionmakers (``module:attr``) until this scope ends."""
        binding = AppBinding(self, origins or {})
        try:
            for spec in engines:
                binding.engine(spec)
            for spec in sessions:
                binding.sessionmaker(spec)
        except BaseException:
            binding.restore()
            raise
        self._bindings.append(binding)
        return binding

    # -- the end -------------------------------------------------------------------------

    def close(self, reason: str = "by dbscope when its scope ended", timeout: float = 5.0) -> None:
        """End every joined connection and give the application its engines back."""
        if self.closed:
            return
        _close_joined(self)
        for binding in reversed(self._bindings):
            binding.restore()
        self._bindings.clear()
        acquired = self.lock.acquire(timeout=timeout)
        try:
            self._state = JoinState.CLOSED
            self._closed_reason = reason
            # the scope's ROLLBACK ends every savepoint: nothing to send
            self._stack.clear()
            self._released.clear()
        finally:
            if acquired:
                self.lock.release()
        with self._books:
            aio, self._aio = self._aio, []
            self._connections.clear()
        for connection in aio:
            connection._running = False
            connection.stop()
        for engine in self._engines:
            engine.pool.dispose()
        self._engines.clear()

    def __repr__(self) -> str:
        return f"<JoinedDatabase test={self.test_name!r} {self._state.value}>"


class JoinedConnection:
    """A DB-API connection that is the test's connection: its transactions are savepoints.

    The first statement after connect, commit or rollback opens a savepoint (as a driver
    opens a transaction); ``commit()`` releases it, ``rollback()`` rolls back to it,
    ``close()`` rolls back what is still open. Everything else is the driver connection's.
    """

    _own = frozenset({"_joined", "_savepoint", "_closed", "_autocommit", "_settings", "_hooks", "_holds", "_held"})
    #: what a driver's connect hook adds to every new connection (SQLAlchemy's psycopg dialect, a
    #: notice handler): kept on this connection, never piled up on the test's one
    _local_calls = frozenset({"add_notice_handler", "remove_notice_handler", "add_notify_handler"})
    #: sqlite3's per-connection callbacks (an app's statement timeout through a progress handler):
    #: kept on this connection, installed on the test's connection for this connection's own
    #: statements only, and taken off after each (with these arguments)
    _statement_hooks: dict[str, tuple[Any, ...]] = {
        "set_progress_handler": (None, 0),
        "set_authorizer": (None,),
        "set_trace_callback": (None,),
    }

    def __init__(self, joined: JoinedDatabase) -> None:
        object.__setattr__(self, "_joined", joined)
        object.__setattr__(self, "_savepoint", None)
        object.__setattr__(self, "_closed", False)
        object.__setattr__(self, "_autocommit", False)
        object.__setattr__(self, "_settings", {})
        object.__setattr__(self, "_hooks", {})
        #: an explicit transaction (BEGIN, begin()) holds the scope's lock until it ends, as a `db`
        #: transaction does: another thread's statements wait (BEGIN IMMEDIATE's promise), and no
        #: transaction of another thread nests in it. Not for an async driver's shape, whose calls
        #: run in whichever worker thread is free.
        object.__setattr__(self, "_holds", True)
        object.__setattr__(self, "_held", False)

    @property
    def closed(self) -> bool:
        return bool(self._closed or self._joined.closed)

    @property
    def in_transaction(self) -> bool:
        return self._savepoint is not None

    def _check(self) -> None:
        self._joined.check_open()
        if self._closed:
            raise DbscopeError("this joined connection was closed; ask its engine for a new one")

    def begin(self) -> None:
        """Open this connection's transaction (a savepoint) now, not at its first statement.

        As an explicit ``BEGIN`` does on sqlite3 with ``isolation_level = None``, it opens one in
        autocommit mode too, which ``commit()`` or ``rollback()`` then ends.
        """
        self._check()
        if not self._holds or self._savepoint is not None:
            with self._joined.statement():
                self._begin_locked(explicit=True)
            return
        joined = self._joined
        joined.acquire()
        try:
            joined.check_open()
            self._begin_locked(explicit=True)
        except BaseException:
            joined.lock.release()
            raise
        object.__setattr__(self, "_held", True)  # released when this transaction ends

    def _let_go(self) -> None:
        """This connection's explicit transaction ended: the scope's lock is the others' again."""
        if self._held:
            object.__setattr__(self, "_held", False)
            try:
                self._joined.lock.release()
            except RuntimeError:  # ended by another thread than the one that began it
                log.warning("a joined transaction of test %r ended in another thread", self._joined.test_name)

    def _begin_locked(self, *, explicit: bool = False) -> None:
        if self._savepoint is None and (explicit or not self._autocommit):
            object.__setattr__(self, "_savepoint", self._joined.open_savepoint())

    def commit(self) -> None:
        self._check()
        self._end_savepoint(self._joined.release)

    def rollback(self) -> None:
        if self._joined.closed:  # the scope's rollback undid it all: nothing left to undo
            object.__setattr__(self, "_savepoint", None)
            self._let_go()
            return
        self._check()
        self._end_savepoint(self._joined.rollback_to)

    def _end_savepoint(self, end: Callable[[str], None]) -> None:
        """Release or roll back this connection's open savepoint, if it has one."""
        name = self._savepoint
        if name is None:
            return
        object.__setattr__(self, "_savepoint", None)
        try:
            with self._joined.statement():
                end(name)
        finally:
            self._let_go()

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._savepoint is not None and not self._joined.closed:
                self.rollback()
        finally:
            object.__setattr__(self, "_closed", True)
            self._let_go()

    def cursor(self, *args: Any, **kwargs: Any) -> JoinedCursor:
        self._check()
        return JoinedCursor(self, args, kwargs)

    def execute(self, sql: str, parameters: Any = None) -> JoinedCursor:
        """sqlite3's and psycopg's shortcut: a new cursor that ran ``sql``."""
        return self.cursor().execute(sql, parameters)

    def _control(self, sql: str) -> bool:
        """Run the app's BEGIN/COMMIT/ROLLBACK text as the DB-API calls; False for any other statement."""
        found = _TRANSACTION_CONTROL.match(sql)
        if found is None:
            return False
        if found.group("begin"):
            self.begin()
        elif found.group("commit"):
            self.commit()
        else:
            self.rollback()
        return True

    # the autocommit switches (SQLAlchemy's AUTOCOMMIT isolation level): statements then run in
    # the test's transaction without a savepoint of their own; never set on the test's connection
    @property
    def autocommit(self) -> bool:
        return bool(self._autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if value and self._savepoint is not None:
            self.commit()
        object.__setattr__(self, "_autocommit", bool(value))

    @property
    def isolation_level(self) -> Any:  # sqlite3: None is autocommit
        return None if self._autocommit else self._settings.get("isolation_level", "")

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._settings["isolation_level"] = value
        self.autocommit = value is None

    def __getattr__(self, name: str) -> Any:
        settings = self._settings
        if name in settings:
            return settings[name]
        if name in self._local_calls:
            return lambda *args, **kwargs: None
        if name in self._statement_hooks:
            hooks = self._hooks

            def keep(*args: Any, **kwargs: Any) -> None:
                getattr(self._joined.conn, name)  # AttributeError where the driver has no such call
                hooks[name] = (args, kwargs)

            return keep
        value = getattr(self._joined.conn, name)
        if not callable(value):
            return value
        joined = self._joined

        def locked(*args: Any, **kwargs: Any) -> Any:  # the driver's own calls (create_function): one at a time too
            with joined.statement():
                return value(*args, **kwargs)

        return locked

    def __setattr__(self, name: str, value: Any) -> None:
        # a setting (read_only, row_factory, ...) stays on this connection: the test's is never changed
        if name in type(self).__dict__ or name in self._own:
            object.__setattr__(self, name, value)
        else:
            self._settings[name] = value

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        return f"<JoinedConnection test={self._joined.test_name!r} savepoint={self._savepoint}>"


class JoinedCursor:
    """A cursor of a joined connection: each statement runs under the scope's lock, its rows read there."""

    def __init__(self, connection: JoinedConnection, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.connection = connection
        self._args = args
        self._kwargs = kwargs
        self._cursor: Any = None
        self._rows: list[Any] = []
        self._position = 0
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: Any = None
        self.arraysize = 1

    def _run(self, method: str, sql: str, parameters: Any) -> JoinedCursor:
        connection = self.connection
        connection._check()
        if method == "execute" and connection._control(sql):
            self.description, self.rowcount, self._rows, self._position = None, -1, [], 0
            return self
        joined = connection._joined
        with joined.statement():
            connection._begin_locked()
            if self._cursor is None:
                self._cursor = joined.conn.cursor(*self._args, **self._kwargs)
            cursor = self._cursor
            hooks = dict(connection._hooks)
            for name, (args, kwargs) in hooks.items():  # this connection's callbacks, for its statement only
                getattr(joined.conn, name)(*args, **kwargs)
            try:
                if parameters is None:
                    getattr(cursor, method)(sql)
                else:
                    getattr(cursor, method)(sql, parameters)
                self.description = cursor.description
                self._rows = list(cursor.fetchall()) if cursor.description else []
            finally:
                for name in hooks:
                    getattr(joined.conn, name)(*JoinedConnection._statement_hooks[name])
            self._position = 0
            self.rowcount = cursor.rowcount
            self.lastrowid = getattr(cursor, "lastrowid", None)
        return self

    def execute(self, sql: str, parameters: Any = None) -> JoinedCursor:
        return self._run("execute", sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> JoinedCursor:
        return self._run("executemany", sql, parameters)

    def fetchone(self) -> Any:
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows = self._rows[self._position : self._position + count]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def nextset(self) -> None:
        return None

    def close(self) -> None:
        cursor, self._cursor = self._cursor, None
        self._rows = []
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # the test's connection is gone with its scope
                pass

    def __getattr__(self, name: str) -> Any:
        if self._cursor is None:
            raise AttributeError(name)
        return getattr(self._cursor, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncJoinedConnection:
    """A joined connection in an async driver's shape, for SQLAlchemy's async dialects.

    Each call that may reach the database runs the :class:`JoinedConnection`'s own in a worker
    thread (``asyncio.to_thread``), as aiosqlite runs sqlite3's: the event loop never waits on
    the scope's lock, and the statement holds that lock in the worker as a thread's does, so
    the app's tasks, the test and its threads take turns one statement at a time. Rows are read
    under the lock by the JoinedCursor; fetching them is local. The subclasses add what one
    driver's adapter in SQLAlchemy calls: psycopg's ``AsyncConnection``, aiomysql's ``Connection``.
    """

    @staticmethod
    def shaped_for(url: str) -> type[AsyncJoinedConnection]:
        return _AiomysqlShape if url.startswith("mysql") else _PsycopgShape

    def __init__(self, connection: JoinedConnection) -> None:
        object.__setattr__(connection, "_holds", False)  # its calls run in any free worker thread
        self._connection = connection

    @staticmethod
    async def _call(fn: Callable[..., Any], *args: Any) -> Any:
        import asyncio

        return await asyncio.to_thread(fn, *args)

    def cursor(self, name: Any = None, *args: Any) -> AsyncJoinedCursor:
        named = (name,) if isinstance(name, str) else ()
        return AsyncJoinedCursor(self, self._connection.cursor(*named))

    async def commit(self) -> None:
        await self._call(self._connection.commit)

    async def rollback(self) -> None:
        await self._call(self._connection.rollback)

    @property
    def closed(self) -> bool:
        return self._connection.closed

    def __getattr__(self, name: str) -> Any:  # info, adapters, character_set_name, add_notice_handler: its own
        return getattr(self._connection, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._connection!r}>"


class _PsycopgShape(AsyncJoinedConnection):
    async def close(self) -> None:
        await self._call(self._connection.close)

    async def set_autocommit(self, value: bool) -> None:
        await self._call(setattr, self._connection, "autocommit", value)

    async def set_isolation_level(self, value: Any) -> None:
        await self._call(setattr, self._connection, "isolation_level", value)

    async def set_read_only(self, value: Any) -> None:
        await self._call(setattr, self._connection, "read_only", value)

    async def set_deferrable(self, value: Any) -> None:
        await self._call(setattr, self._connection, "deferrable", value)

    @property
    def broken(self) -> bool:
        return False

    @property
    def autocommit(self) -> bool:
        return self._connection.autocommit


class _AiomysqlShape(AsyncJoinedConnection):
    async def autocommit(self, value: bool) -> None:
        await self._call(setattr, self._connection, "autocommit", bool(value))

    def get_autocommit(self) -> bool:
        return self._connection.autocommit

    async def ping(self, reconnect: bool = False) -> None:
        self._connection._check()  # the test's connection is dbscope's to keep alive

    async def ensure_closed(self) -> None:
        await self._call(self._connection.close)

    def close(self) -> None:  # SQLAlchemy's forced close, outside the event loop
        self._connection.close()


class AsyncJoinedCursor:
    """A JoinedCursor with psycopg's ``AsyncCursor`` shape: statements run in a worker thread."""

    def __init__(self, owner: AsyncJoinedConnection, cursor: JoinedCursor) -> None:
        self._owner = owner
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    @property
    def pgresult(self) -> Any:  # SQLAlchemy's psycopg dialect reads the rows only of a result that has them
        return getattr(self._cursor, "pgresult", None)

    async def execute(self, sql: str, parameters: Any = None) -> Self:
        await self._owner._call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> Self:
        await self._owner._call(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        pass

    def _close(self) -> None:
        self._cursor.close()

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()


# -- the application's own engines and sessionmakers -------------------------------------------

_SETTING = {"engine": "dbscope_app_engines", "sessionmaker": "dbscope_app_sessions"}
_MISSING = object()


@dataclass
class _Rebound:
    restore: Callable[[], None]


class AppBinding:
    """The app's engines and sessionmakers, rebound to the joined connection; ``restore()`` undoes it."""

    def __init__(self, joined: JoinedDatabase, origins: dict[str, str]) -> None:
        self._joined = joined
        self._origins = origins
        self._rebound: list[_Rebound] = []
        self._sync: Any = None
        self._async: Any = None

    def _error(self, kind: str, spec: str, found: str) -> ConfigError:
        setting = _SETTING[kind]
        origin = self._origins.get(setting, "config file")
        return ConfigError(f"{setting} = {spec!r} (from {origin}) cannot be used: {found}")

    def _resolve(self, kind: str, spec: str) -> Any:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise self._error(kind, spec, f"it is not module:attr of a SQLAlchemy {kind}")
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:
            raise self._error(kind, spec, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise self._error(kind, spec, f"{module_name} has no attribute {attr}") from None
        return target

    def _check_database(self, kind: str, spec: str, url: Any) -> None:
        if not _same_database(url, self._joined.url):
            raise self._error(
                kind,
                spec,
                f"it points at {mask_password(str(url.render_as_string(hide_password=True)))}, not at the test's "
                f"database {mask_password(self._joined.url)}; build it from the variable dbscope sets "
                "(dbscope_env_var, default DATABASE_URL)",
            )

    def engine(self, spec: str) -> None:
        target = self._resolve("engine", spec)
        flask_engines = _flask_sqlalchemy_engines(target)
        for engine in [target] if flask_engines is None else flask_engines:
            self._engine(spec, engine)

    def _engine(self, spec: str, target: Any) -> None:
        from sqlalchemy.engine import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine
        from sqlalchemy.pool import NullPool

        if isinstance(target, AsyncEngine):
            sync_engine = target.sync_engine
        elif isinstance(target, Engine):
            sync_engine = target
        else:
            raise self._error(
                "engine",
                spec,
                f"it is {_kind(target)}, not a SQLAlchemy Engine or AsyncEngine, nor a Flask app with Flask-SQLAlchemy",
            )
        self._check_database("engine", spec, sync_engine.url)
        original = sync_engine.pool
        dialect = sync_engine.dialect
        if dialect.server_version_info is None:  # not connected yet: its first connection is a joined one
            for name, value in _dialect_options(str(sync_engine.url)).items():
                setattr(dialect, name, value)
        joined_driver = self._joined.joined_async_url().partition(":")[0]
        if isinstance(target, AsyncEngine) and joined_driver != sync_engine.url.drivername:
            # asyncpg cannot speak through the test's psycopg connection: for this scope the engine runs
            # psycopg's async dialect on joined connections (the same SQLAlchemy, the same errors), and
            # keeps its own URL, execution options and engine events
            joined_engine = self._joined_async().sync_engine
            own_dialect = sync_engine.dialect

            def give_back() -> None:
                sync_engine.pool = original
                sync_engine.dialect = own_dialect

            sync_engine.dialect = joined_engine.dialect
            sync_engine.pool = joined_engine.pool
            self._rebound.append(_Rebound(give_back))
            return
        if isinstance(target, AsyncEngine):
            async_creator = self._joined.async_creator()

            def creator() -> Any:  # what create_async_engine(async_creator=...) makes
                return sync_engine.dialect.dbapi.connect(async_creator_fn=async_creator)  # type: ignore[union-attr]
        else:
            creator = self._joined.connect
        # a pool of joined connections that keeps the app engine's listeners (its dialect's
        # on-connect setup), as SQLAlchemy's own Pool.recreate() does
        pool = NullPool(creator, dialect=sync_engine.dialect, _dispatch=original.dispatch)

        def restore() -> None:
            sync_engine.pool = original

        sync_engine.pool = pool
        self._rebound.append(_Rebound(restore))

    def sessionmaker(self, spec: str) -> None:
        from sqlalchemy.ext.asyncio import async_sessionmaker
        from sqlalchemy.orm import sessionmaker

        target = self._resolve("sessionmaker", spec)
        if isinstance(target, async_sessionmaker):
            engine = self._joined_async()
        elif isinstance(target, sessionmaker):
            engine = self._joined_sync()
        else:
            raise self._error(
                "sessionmaker", spec, f"it is {_kind(target)}, not a SQLAlchemy sessionmaker or async_sessionmaker"
            )
        bind = target.kw.get("bind")
        if bind is not None and hasattr(bind, "url"):
            self._check_database("sessionmaker", spec, bind.url)
        saved = target.kw.get("bind", _MISSING)

        def restore() -> None:
            if saved is _MISSING:
                target.kw.pop("bind", None)
            else:
                target.kw["bind"] = saved

        target.kw["bind"] = engine
        self._rebound.append(_Rebound(restore))

    def _joined_sync(self) -> Any:
        if self._sync is None:
            self._sync = self._joined.engine()
        return self._sync

    def _joined_async(self) -> Any:
        if self._async is None:
            self._async = self._joined.async_engine()
        return self._async

    def restore(self) -> None:
        while self._rebound:
            self._rebound.pop().restore()


def _dialect_options(url: str) -> dict[str, Any]:
    """psycopg's dialect looks up the hstore type through psycopg's own Connection class, which a
    joined connection is not: SQLAlchemy's own hstore handling is used instead."""
    return {"use_native_hstore": False} if url.startswith("postgresql+psycopg") else {}


def _flask_sqlalchemy_engines(target: Any) -> list[Any] | None:
    """The engines Flask-SQLAlchemy built for a Flask app (``dbscope_app_engines = myapp:app``), None
    for anything else: they live in the app's extension, reachable inside an app context only."""
    extensions = getattr(target, "extensions", None)
    if not isinstance(extensions, dict) or "sqlalchemy" not in extensions or not hasattr(target, "app_context"):
        return None
    with target.app_context():
        return list(extensions["sqlalchemy"].engines.values())


def _kind(target: Any) -> str:
    return f"a {type(target).__module__}.{type(target).__qualname__}"


def _same_database(url: Any, ours: str) -> bool:
    from sqlalchemy.engine import make_url

    mine = make_url(ours)
    if url.get_backend_name() != mine.get_backend_name():
        return False
    if mine.get_backend_name() == "sqlite":
        return _real(url.database) == _real(mine.database)
    return bool((url.host, url.port or None, url.database) == (mine.host, mine.port or None, mine.database))


def _real(path: str | None) -> str:
    return os.path.realpath(path) if path and path != ":memory:" else path or ""


def _sqlalchemy(what: str) -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise DbscopeError(f"{what} needs SQLAlchemy: pip install 'dbscope[sqlalchemy]'") from None
    return sqlalchemy


# -- every engine that points at the test's database ----------------------------------------------

#: the JoinedDatabases of the scopes open now (one per rollback scope), which SQLAlchemy engines
#: the settings do not name join too
_OPEN: list[JoinedDatabase] = []
_OPEN_LOCK = threading.Lock()
_HOOKS: list[bool] = []  # [True] once the engine hooks are installed in this process
_TARGET = "dbscope_connect_target"  # a pooled connection's record: (dialect, what it connected to)


def install_engine_hooks() -> bool:
    """Join every sync SQLAlchemy engine that connects to a rollback scope's database (once a process).

    Two class-level SQLAlchemy events: ``do_connect`` gives an engine that connects to the database
    of an open :class:`JoinedDatabase` (the same file or server database, the same driver) a
    joined connection instead of a connection of its own, whether the engine was built at import,
    lazily in the test, or by code dbscope was never told of; a pool's ``checkout`` replaces a
    pooled connection that is a joined one of an ended scope, or a connection of its own made
    before the scope to the database a scope now joins. False without SQLAlchemy.
    """
    with _OPEN_LOCK:
        if _HOOKS:
            return True
        try:
            from sqlalchemy import event
            from sqlalchemy.engine import Engine
            from sqlalchemy.pool import Pool
        except ImportError:
            return False
        event.listen(Engine, "do_connect", _on_do_connect)
        event.listen(Pool, "checkout", _on_checkout)
        _HOOKS.append(True)
        return True


def _open_joined(joined: JoinedDatabase) -> None:
    install_engine_hooks()
    with _OPEN_LOCK:
        _OPEN.append(joined)


def _close_joined(joined: JoinedDatabase) -> None:
    with _OPEN_LOCK:
        if joined in _OPEN:
            _OPEN.remove(joined)


def _joined_for(dialect: Any, target: tuple[str, ...]) -> JoinedDatabase | None:
    with _OPEN_LOCK:
        candidates = list(_OPEN)
    for joined in reversed(candidates):  # the scope opened last first
        if not joined.closed and joined.is_target(dialect, target):
            return joined
    return None


def _connect_target(dialect: Any, cargs: Sequence[Any], cparams: dict[str, Any]) -> tuple[str, ...] | None:
    """What a SQLAlchemy dialect's connect arguments reach: a file (SQLite) or a server's database."""
    if dialect.name == "sqlite":
        database = cargs[0] if cargs else cparams.get("database")
        if not isinstance(database, str) or database in ("", ":memory:"):
            return None  # a private in-memory database: nobody else's
        if database.startswith("file:"):
            database = database[len("file:") :].partition("?")[0]
        return ("sqlite", os.path.realpath(database))
    if cargs:
        return None  # a DSN string: not compared
    database = cparams.get("dbname") or cparams.get("database") or cparams.get("db")
    if not database:
        return None
    host = cparams.get("host") or cparams.get("unix_socket") or ""
    return (str(dialect.name), str(host), str(cparams.get("port") or ""), str(database))


def _on_do_connect(dialect: Any, record: Any, cargs: Sequence[Any], cparams: dict[str, Any]) -> Any:
    if getattr(dialect, "is_async", False):
        return None  # an async engine joins when the settings name it (dbscope_app_engines)
    target = _connect_target(dialect, cargs, cparams)
    if target is None:
        return None
    if record is not None:
        record.info[_TARGET] = (dialect, target)
    joined = _joined_for(dialect, target)
    if joined is None:
        return None
    if dialect.server_version_info is None:  # its first connection is this joined one
        for name, value in _dialect_options(joined.url).items():
            setattr(dialect, name, value)
    return joined.connect()


def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if isinstance(dbapi_connection, JoinedConnection):
        stale = dbapi_connection.closed  # its scope ended: the pool connects again, joined to today's
    else:
        found = record.info.get(_TARGET)  # a connection of its own, made before a scope joined its database
        stale = found is not None and _joined_for(*found) is not None
    if stale:
        from sqlalchemy.exc import DisconnectionError

        raise DisconnectionError("dbscope: a new connection, joined to the current test's transaction or not")
