"""MariaDB/MySQL backend: a database per scope, cloned on the server from a migrated template.

``mysql://user[:password]@host:port/`` or ``mariadb://...``: the database in the URL (if
any) is only used to connect; dbscope creates and drops its own databases, all named
``dbscope_*`` with an owner record in the ``dbscope_registry`` database (see
:mod:`.mariadb_owner`), and never drops any other.

* **Templates** ``dbscope_tpl_<fingerprint>`` are built once per server from the
  migrations and seed, under the named lock ``GET_LOCK('dbscope_tpl_<fingerprint>')``
  (processes building the same one build it once; the others wait and reuse it). The
  owner record says ``building`` until the build is complete, then ``template``: a
  build that died half-way is dropped and built again by the next run. Later runs
  reuse templates; ``rebuild=True`` builds again (once per session).
* **Clones** ``dbscope_<run>_<label>``: MySQL has no template databases, so a clone is
  the template's cached DDL and an ``INSERT ... SELECT`` of its seeded tables, sent in
  one script (see :mod:`.mariadb_schema`), from a pool the manager keeps warm; dropped
  by a background janitor thread after the test, which first ends the sessions still
  on it.
* **Liveness**: the janitor's connection holds the named lock ``dbscope_run_<run>`` and
  beats a heartbeat in ``dbscope_registry.runs``, so garbage collection
  (:func:`collect_garbage`, and a sweep when a backend starts) never touches a live
  run's databases but cleans up after crashed ones.

PyMySQL is imported only when this backend is used.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql

from ..errors import BackendUnavailableError, CleanupError, ConfigError, DbscopeError, MigrationError
from ..migrations import MigrationSet
from ..urls import BackendURL, mask_password, parse_backend_url, without_password
from . import servers
from .base import BuildEnvironment, Dialect, Look
from .janitor import Janitor
from .mariadb_connect import (
    START_ADVICE,
    Lent,
    MariaDBConnection,
    ServerAddress,
    check_local,
    connect,
    connect_client,
    in_transaction,
    server_address,
    usable,
)
from .mariadb_connect import quote_name as q
from .mariadb_dialect import DIALECT
from .mariadb_owner import (
    drop_checked,
    drop_unused_template,
    ensure_registry,
    forget_dead_runs,
    heartbeat,
    note_owner,
    note_template,
    plan_garbage,
    read_owner,
    refusal,
    register_run,
    template_lock,
    unregister_run,
)
from .mariadb_proc import is_throwaway_datadir
from .mariadb_schema import (
    Blueprint,
    Gate,
    Present,
    after_rollback_script,
    autoinc_statement,
    busy_statement,
    clone_script,
    gate_statement,
    ids_statement,
    mark_statements,
    own_count,
    present,
    present_of,
    present_statements,
    read_autoinc,
    read_blueprint,
    read_gate,
    read_mark,
    read_writes,
    restore_script,
    results,
    rows,
    run_script,
    same_objects,
    schema_signature,
    sessions_of,
    sessions_statement,
    signature_of,
    signature_statements,
    track_database,
    tracking_script,
    triggers_statement,
    writes_statement,
)
from .registry import by_scheme
from .server_backend import ServerBackend
from .servers import REGISTRY_DB, STALE_AFTER_S, TEMPLATE_PREFIX, DatabaseState, GarbageItem, OwnerRecord

__all__ = ["DatabaseState", "MariaDBBackend", "MariaDBDatabase", "MariaDBTemplate", "clone_name", "collect_garbage"]

log = logging.getLogger("dbscope.database")

DEFAULT_POOL_SIZE = 2
HEARTBEAT_S = 5.0
#: How long a build waits for another process building the same template.
BUILD_WAIT_S = 600
_MAX_NAME = 62  # 64, less the "_w" of a worker database's write notes
_QUIET = "SET @dbscope_quiet = 1"
_LOUD = "SET @dbscope_quiet = NULL"
#: dbscope's own connection to a database is pinged before use only after this long idle
_PING_AFTER_S = 1.0


#: what a look that ended a scope read: the write mark it read from, and its gate, write-note and
#: AUTO_INCREMENT rows
_Ended = tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class _Seen:
    """What a full look at a database found, still true while the server's counts (``gate``) stay as they were.

    A full look reads ``information_schema`` (COLUMNS opens every table: 2-4 ms on 30
    tables); while no statement that can change a schema ran anywhere on the server
    (:data:`.mariadb_schema.DDL_COUNTERS`), its signature, table ids and objects still hold,
    and while nobody connected or changed database, nobody new is on it. It is recorded only
    when no other session was running a statement during the look (one that had counted but
    not finished could change the schema after it), and dbscope's own schema statements
    move it along only when the counts moved by exactly theirs.
    """

    gate: Gate
    signature: str
    ids: str  # the tables' InnoDB ids (a write mark's second half)
    sessions_empty: bool  # no foreign session was on the database
    connects: int  # connections dbscope had opened to it by then (the server counts them too)
    triggers: str  # the user's triggers (triggers_statement's row), part of the signature
    objects: Present | None = None  # tables, views, triggers, tracked tables (AUTO_INCREMENT values stale)


def _lost(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the server cut the connection (gone away, lost during a query, closed)."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return isinstance(exc, pymysql.OperationalError) and bool(exc.args) and exc.args[0] in (2006, 2013)


def clone_name(run: str, label: str) -> str:
    """``dbscope_<run>_<label>``, at most 62 characters (see :func:`servers.clone_name`)."""
    return servers.clone_name(run, label, max_length=_MAX_NAME)


@dataclass
class MariaDBTemplate:
    """A migrated database on the server that clones copy (a template, or a suite's baseline)."""

    fingerprint: str
    name: str
    built: bool = False  # built by this backend (False: reused)
    blueprint: Blueprint | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class MariaDBDatabase:
    """One scope's database on the server."""

    dialect: Dialect = DIALECT

    def __init__(self, backend: MariaDBBackend, name: str, template: MariaDBTemplate) -> None:
        self.name = name
        self.template = template
        self.state = DatabaseState.OPEN
        self._backend = backend
        self._own: set[int] = set()  # server thread ids of every connection dbscope opened here
        self._primary: Any = None  # a client connection (PyMySQL or mysqlclient)
        self._restorer: MariaDBConnection | None = None
        self._restorer_used = 0.0
        self._connects = 0  # connections dbscope opened to it: the server's CONNECTIONS count moves by these
        self._tracking = False
        #: what the database last held in full (a template) and the write mark then: restores
        #: after that touch only the tables written since
        self._restored: tuple[Any, Any] | None = None
        self._seen: _Seen | None = None
        #: the write mark a restore ended with, for the write_mark() that follows it
        self._fresh_mark: Any = None
        #: what the look ending a scope read with no foreign session on the database, for the
        #: after_rollback() (its AUTO_INCREMENT rows) or the restore (all of it) that follows at once
        self._ended: _Ended | None = None
        self._lock = threading.Lock()

    def url(self, fmt: str = "sqlalchemy") -> str:
        """``mysql+pymysql://`` (sqlalchemy), ``mysql+aiomysql://`` (async), ``mysql://`` (dsn), or one part."""
        return self._backend.address.url(self.name, fmt)

    def connect(self, *, autocommit: bool = False) -> Any:
        """A connection for the scope's clients: PyMySQL's, or mysqlclient's with ``?driver=mysqlclient``."""
        if self.state is DatabaseState.DROPPED:
            raise BackendUnavailableError(f"database {self.name} was dropped when its scope ended; use a new scope")
        self._connects += 1
        conn = connect_client(self._backend.address, self.name, autocommit=autocommit)
        self._own.add(int(conn.thread_id()))
        return conn

    def open_primary(self) -> None:
        with self._lock:
            if self._primary is None or not self._primary.open:
                self._primary = self.connect(autocommit=True)

    def primary_connection(self) -> Any:
        """The connection opened with the database (None once released); replaced if the server cut it."""
        with self._lock:
            primary = self._primary
            if primary is None or usable(primary):
                return primary
            log.warning("dbscope's connection to %s was cut (server restarted?); reconnecting", self.name)
            self._primary = self.connect(autocommit=True)
            return self._primary

    def _restore_connection(self) -> MariaDBConnection:
        """dbscope's own connection for looks and restores; pinged only after a second idle (a round trip less)."""
        with self._lock:
            now = time.monotonic()
            conn = self._restorer
            if conn is None or not conn.open or (now - self._restorer_used > _PING_AFTER_S and not usable(conn)):
                self._connects += 1
                conn = connect(self._backend.address, self.name, autocommit=True, multi=True, scoped=True)
                self._own.add(conn.thread_id())
                wait = max(1, int(self._backend.close_timeout))
                conn.execute("SET SESSION lock_wait_timeout = %s, innodb_lock_wait_timeout = %s", (wait, wait))
                self._restorer = conn
                self._seen = None
            self._restorer_used = now
            return conn

    def release(self) -> None:
        with self._lock:
            for conn in (self._primary, self._restorer):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._primary = self._restorer = None
            self._seen = None
            if self.state is DatabaseState.OPEN:
                self.state = DatabaseState.RELEASED

    def foreign_connections(self, known: Collection[Hashable] | None = ()) -> Mapping[Hashable, bool]:
        """Sessions on this database dbscope did not open: thread id -> holds a transaction (or runs a statement)."""
        return self._backend._foreign_connections(self.name, frozenset(self._own), known)

    def end_transactions(self, keys: Iterable[Hashable]) -> str:
        """End the sessions holding those transactions (``KILL CONNECTION``): nothing else ends another's."""
        ids = [int(str(k)) for k in keys]
        self._backend._kill(ids)
        return f"ended the connection(s) with id {', '.join(map(str, ids))} (KILL CONNECTION)"

    def capture(self, template: Any) -> MariaDBTemplate:
        """This database's contents now, copied into a snapshot database that ``restore()`` takes."""
        self._fresh_mark = self._ended = None
        return self._backend._capture(self, template)

    def recreate(self, template: Any) -> None:
        """Drop (ending every session on it) and clone it again under the same name."""
        self.release()
        self._backend._recreate(self, template)
        self._tracking = False
        self._restored = (template, None)
        self._fresh_mark = self._ended = None
        self.open_primary()

    def schema_signature(self) -> str | None:
        return schema_signature(self._restore_connection(), self.name)

    def watch_writes(self) -> None:
        """Row triggers on every table note what other connections write (in the companion ``<name>_w``)."""
        if self._tracking:
            return
        conn = self._restore_connection()
        tables = [
            str(r[0])
            for r in rows(
                conn,
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
                [self.name],
            )
        ]
        companion = track_database(self.name)
        record = self._backend.owner.but(kind="snapshot", template=self.name)
        self._seen = None
        try:
            run_script(conn, [note_owner(companion, record), *tracking_script(self.name, tables)])
        except pymysql.Error as exc:
            raise self._backend._error(exc, f"cannot watch the writes on {self.name}") from exc
        self._tracking = True
        if self._restored is None:  # a new clone: it holds its template's contents
            self._restored = (self.template, self.write_mark(conn))

    def write_mark(self, conn: Any) -> Any:
        """(the last write note, the tables' InnoDB ids), read on dbscope's own connection."""
        if not self._tracking:
            return None
        fresh, self._fresh_mark = self._fresh_mark, None
        if fresh is not None:  # the restore that just ended took it
            return fresh
        own = self._restore_connection()
        seen = self._seen
        if seen is not None:
            found = results(own, [gate_statement(), writes_statement(self.name, 2**62)])
            if read_gate(found[0])[0] == seen.gate[0]:
                return (int(found[1][0][0]), seen.ids)
        return read_mark(results(own, mark_statements(self.name, 0)), None)[0]

    def written_since(self, conn: Any, mark: Any) -> str | None:
        if mark is None:
            return None
        return read_mark(results(self._restore_connection(), mark_statements(self.name, mark[0])), mark)[1]

    def look(self, conn: Any, mark: Any, *, known: Collection[Hashable] | None = ()) -> Look:
        """The schema, the writes since ``mark`` and the foreign sessions, in one round trip (usually).

        While the server's counts say nothing could have changed the schema or brought a
        session here since the last full look (see :class:`_Seen`), only those counts and the
        write notes are read; a look that ends a scope (``known`` given) also reads the
        ``AUTO_INCREMENT`` counters for :meth:`after_rollback`. dbscope's connection is not
        pinged before every look: one the server cut is replaced and the look (it only reads)
        made again.
        """
        try:
            return self._look(mark, known)
        except BackendUnavailableError as exc:
            if not _lost(exc.__cause__):
                raise
            log.warning("dbscope's connection to %s was cut (%s); reconnecting", self.name, exc.__cause__)
            with self._lock:
                self._restorer_used = 0.0  # ping it: a cut one is replaced
            return self._look(mark, known)

    def _look(self, mark: Any, known: Collection[Hashable] | None) -> Look:
        self._fresh_mark = self._ended = None
        own_ids = frozenset(self._own)
        since = mark[0] if mark is not None else 0
        ending = known is not None
        try:
            own = self._restore_connection()
            seen = self._seen
            if seen is not None:
                quick = [gate_statement()]
                if self._tracking:
                    quick.append(writes_statement(self.name, since))
                if ending and self._tracking:
                    quick.append(autoinc_statement(self.name))
                found = results(own, quick)
                gate = read_gate(found[0])
                if gate[0] == seen.gate[0]:
                    return self._quick_look(own, seen, gate, found, mark, known, own_ids)
            # the user's triggers are part of the signature, but costly to list: kept while no
            # statement that can add or remove one ran (the quick read just said which)
            triggers = seen.triggers if seen is not None and gate[3] == seen.gate[3] else None
            statements = [
                gate_statement(),
                busy_statement(),
                sessions_statement(self.name),
                *signature_statements(self.name),
                triggers_statement(self.name) if triggers is None else "SELECT NULL",
            ]
            if self._tracking:
                statements += mark_statements(self.name, since)
            if ending and self._tracking:
                statements.append(autoinc_statement(self.name))
            found = results(own, statements)
            gate = read_gate(found[0])
            if triggers is not None and seen is not None and gate[3] != seen.gate[3]:  # one came or went meanwhile
                triggers = None
                found[5] = rows(own, triggers_statement(self.name))
        except pymysql.Error as exc:
            raise self._backend._error(exc, f"cannot look at {self.name}") from exc
        busy = int(found[1][0][0])
        listed = str(found[5][0][0] or "") if triggers is None else triggers
        signature = signature_of([found[3], found[4], [(listed or None,)]])
        sessions: Mapping[Hashable, bool] = sessions_of(own, found[2], own_ids)
        new_mark, written = read_mark(found[6:8], mark) if self._tracking else (None, None)
        self._seen = (
            _Seen(gate, signature, new_mark[1] if new_mark is not None else "", not sessions, self._connects, listed)
            if not busy
            else None
        )
        if ending and self._tracking and not sessions:
            self._ended = (since, found[0], found[6], found[8])
        if known is not None and set(sessions) - set(known):
            sessions = self.foreign_connections(known)
        return Look(signature, written, new_mark, sessions)

    def _quick_look(
        self,
        own: MariaDBConnection,
        seen: _Seen,
        gate: Gate,
        found: list[list[tuple[Any, ...]]],
        mark: Any,
        known: Collection[Hashable] | None,
        own_ids: frozenset[int],
    ) -> Look:
        """A look whose gate read showed no schema statement since ``seen``: only the sessions may need reading."""
        new_mark, written = read_mark([found[1], [(seen.ids,)]], mark) if self._tracking else (None, None)
        sessions: Mapping[Hashable, bool] = {}
        others_connected = gate[1] - seen.gate[1] != self._connects - seen.connects or gate[2] != seen.gate[2]
        if others_connected or not seen.sessions_empty:
            busy, listed = results(own, [busy_statement(), sessions_statement(self.name)])
            sessions = sessions_of(own, listed, own_ids)
            # one connecting now (busy) may yet land here: read the sessions again next time
            self._seen = replace(
                seen, gate=gate, sessions_empty=not sessions and not busy[0][0], connects=self._connects
            )
            if known is not None and set(sessions) - set(known):
                sessions = self.foreign_connections(known)
        if len(found) > 2 and not sessions:
            self._ended = (mark[0] if mark is not None else 0, found[0], found[1], found[2])
        return Look(seen.signature, written, new_mark, sessions)

    def _run_own(self, conn: MariaDBConnection, statements: list[str]) -> list[list[tuple[Any, ...]]]:
        """Run dbscope's own ``statements`` in one round trip, between two gate reads (see :class:`_Seen`).

        What the database was seen to be still holds after them only if the counts moved by
        exactly these statements' own: a schema statement of anyone else's meanwhile forgets it.
        """
        found = results(conn, [gate_statement(), *statements, gate_statement()])
        before, after = read_gate(found[0]), read_gate(found[-1])
        seen = self._seen
        ours = own_count(statements)
        exact = before[0] == seen.gate[0] and before[3] == seen.gate[3] if seen is not None else False
        if seen is not None and exact and after[0] == before[0] + ours[0] and after[3] == before[3] + ours[3]:
            # sessions: what was seen, plus our own USEs; anyone else's connecting shows at the next look
            self._seen = replace(seen, gate=(after[0], seen.gate[1], seen.gate[2] + ours[2], after[3]))
        else:
            self._seen = None
        return found[1:-1]

    def after_rollback(self, template: Any) -> None:
        """InnoDB does not roll back AUTO_INCREMENT: set it back on the tables where it moved."""
        blueprint = self._backend.blueprint(template)
        conn = self._restore_connection()
        ended, self._ended = self._ended, None
        loaded = ended[3] if ended is not None else None
        try:
            if loaded is None:
                loaded = rows(conn, autoinc_statement(self.name))
            now = read_autoinc(conn, self.name, blueprint, loaded)
            script = after_rollback_script(blueprint, self.name, now)
            if script:
                self._run_own(conn, script)
        except pymysql.Error as exc:
            raise self._backend._restore_error(exc, self) from exc

    def in_transaction(self, conn: Any) -> bool:
        return in_transaction(conn)

    def is_closed(self, conn: Any) -> bool:
        return not conn.open

    def execute(self, conn: Any, statement: str) -> None:
        with conn.cursor() as cursor:
            cursor.execute(statement)

    def restore(self, template: Any) -> None:
        """Bring the contents back to ``template``'s in place; open connections stay open."""
        self._backend._restore(self, template)

    def keep(self) -> str:
        """Keep this database after its scope (gc leaves it alone); its URL, without the password."""
        if self._backend.throwaway:
            raise BackendUnavailableError(
                f"{self.name} lives on a throwaway server that is removed when the run ends; to keep a failed "
                "test's database, run it against a server (--dbscope-url mysql://user@host:port/)"
            )
        self._backend._keep(self)
        self.state = DatabaseState.KEPT
        return without_password(self.url("dsn"))

    def drop(self) -> None:
        """Release, then drop in the background; bounded wait in ``backend.close()``."""
        self.release()
        with self._lock:
            if self.state is DatabaseState.DROPPED:
                return
            self.state = DatabaseState.DROPPED
        self._backend._schedule_drop(self.name)
        if self._tracking:
            self._backend._schedule_drop(track_database(self.name))

    def __repr__(self) -> str:
        return f"<MariaDBDatabase {self.name} on {self._backend.address.where} {self.state.value}>"


class _RunSession:
    """What the run's janitor (janitor.py) does on MariaDB: its lock is a named lock of its connection."""

    errors: tuple[type[BaseException], ...] = (pymysql.Error,)
    transient: tuple[type[BaseException], ...] = (pymysql.OperationalError,)
    gone: tuple[type[BaseException], ...] = ()  # drop_checked drops only a database that is there

    def __init__(self, backend: MariaDBBackend) -> None:
        self._backend = backend

    def open(self) -> MariaDBConnection:
        conn = connect(self._backend.address, REGISTRY_DB)
        register_run(conn, self._backend.owner)
        return conn

    def usable(self, conn: MariaDBConnection) -> bool:
        return usable(conn)

    def heartbeat(self, conn: MariaDBConnection, run: str) -> None:
        heartbeat(conn, run)

    def unregister(self, conn: MariaDBConnection, run: str) -> None:
        unregister_run(conn, run)

    def drop(self, conn: MariaDBConnection, name: str) -> bool:
        return drop_checked(conn, name)


class MariaDBBackend(ServerBackend[MariaDBTemplate, MariaDBConnection]):
    """Templates and per-scope databases on a MariaDB/MySQL server (``mysql://...``, ``mariadb://...``)."""

    dialect = DIALECT
    what = "MariaDB"
    driver_errors = (pymysql.Error,)
    _refusal = staticmethod(refusal)

    def __init__(
        self,
        url: BackendURL | str,
        *,
        run_id: str | None = None,
        config: Any = None,
        allow_remote: bool | None = None,
        close_timeout: float | None = None,
        session: str | None = None,
        sweep: bool = True,
        heartbeat_s: float = HEARTBEAT_S,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """``on_close``: run last by :meth:`close` (a throwaway server's stop)."""
        parsed = parse_backend_url(url) if isinstance(url, str) else url
        self.url = parsed
        self.address: ServerAddress = server_address(parsed)
        if allow_remote is None:
            allow_remote = bool(getattr(config, "allow_remote", False))
        check_local(self.address, allow_remote=allow_remote)
        self._begin_run(run_id=run_id, session=session, config=config, close_timeout=close_timeout, on_close=on_close)
        self.pool_size = DEFAULT_POOL_SIZE
        with contextlib.ExitStack() as undo:
            first = connect(self.address, self.address.database)
            undo.callback(first.close)
            try:
                ensure_registry(first)
            except pymysql.Error as exc:
                raise self._error(exc, f"cannot create dbscope's registry database {REGISTRY_DB}") from exc
            version, datadir = rows(first, "SELECT VERSION(), @@datadir")[0]
            self.server_version = str(version)
            #: the server is a throwaway one dbscope started (mysql+proc://): its databases cannot outlive the run
            self.throwaway = is_throwaway_datadir(str(datadir))
            try:  # PROCESS: other users' sessions in PROCESSLIST, InnoDB's table ids and transactions
                rows(first, "SELECT 1 FROM information_schema.INNODB_SYS_TABLES LIMIT 1")
            except pymysql.Error as exc:
                raise self._error(exc, "dbscope cannot read InnoDB's tables and transactions") from exc
            first.close()
            self._admin = Lent(lambda: connect(self.address, REGISTRY_DB))
            undo.callback(self._admin.close)
            self._creators = queue.LifoQueue()
            undo.callback(self._close_creators)
            self._janitor = Janitor(_RunSession(self), self.run_id, interval=heartbeat_s)
            undo.callback(lambda: self._janitor.close(self.close_timeout))
            if sweep:
                self._sweep()
            undo.pop_all()
        log.debug("MariaDB backend for run %s on %s (%s)", self.run_id, self.address.where, self.server_version)

    # -- errors ----------------------------------------------------------------------------------

    def _error(self, exc: BaseException, what: str) -> BackendUnavailableError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        text = mask_password(str(exc.args[1]) if len(exc.args) > 1 else str(exc)).strip()
        if code == 1227:  # ER_SPECIFIC_ACCESS_DENIED_ERROR: a global privilege (PROCESS, CONNECTION ADMIN)
            return BackendUnavailableError(
                f"{what} on {self.address.where}: {text}. dbscope reads who is connected to a test's database and "
                "ends what a test left open; as an administrator run GRANT PROCESS, CONNECTION ADMIN ON *.* TO "
                f"'{self.address.user}'@'<host>'; (MySQL: PROCESS, CONNECTION_ADMIN)"
            )
        if code == 1044 or code == 1142 or (code is not None and "denied" in text.lower()):
            return BackendUnavailableError(
                f"{what} on {self.address.where}: {text}. User {self.address.user!r} needs to create and drop "
                f"databases named dbscope_*: as an administrator run GRANT ALL ON `dbscope\\_%`.* TO "
                f"'{self.address.user}'@'<host>';"
            )
        if code in (2006, 2013) or isinstance(exc, pymysql.err.InterfaceError):
            return BackendUnavailableError(
                f"{what} on {self.address.where}: the server closed the connection ({text}): it restarted, or "
                f"stopped. {START_ADVICE}."
            )
        return BackendUnavailableError(f"{what} on {self.address.where}: {text}")

    def _restore_error(self, exc: BaseException, database: MariaDBDatabase) -> DbscopeError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in (1205, 1213):  # lock wait timeout, deadlock: another connection holds the tables
            return CleanupError(
                f"cannot restore {database.name}: another connection holds a lock on its tables for longer than "
                f"{self.close_timeout:g} s ({exc.args[1] if len(exc.args) > 1 else exc}). End the transactions the "
                "test left open (commit or roll back) before the test ends."
            )
        return self._error(exc, f"cannot restore {database.name}")

    # -- templates -------------------------------------------------------------------------------

    def _note_template(self, name: str) -> None:
        with self._admin.lock:
            note_template(self._admin.get(), self.run_id, name)

    def _ensure_template(
        self,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool,
        environment: BuildEnvironment | None,
    ) -> MariaDBTemplate:
        name = f"{TEMPLATE_PREFIX}{fingerprint}"
        conn = connect(self.address, REGISTRY_DB)
        try:
            got = rows(conn, "SELECT GET_LOCK(%s, 0)", [template_lock(fingerprint)])[0][0]
            if not got:
                log.info("dbscope: waiting for another process building the template %s", name)
                got = rows(conn, "SELECT GET_LOCK(%s, %s)", [template_lock(fingerprint), BUILD_WAIT_S])[0][0]
                if not got:
                    raise BackendUnavailableError(
                        f"waited {BUILD_WAIT_S} s for another process building the template {name} on "
                        f"{self.address.where}; is it stuck? See SHOW PROCESSLIST"
                    )
            exists, record = read_owner(conn, name)
            if exists and record is None:
                raise BackendUnavailableError(
                    f"a database named {name} exists on {self.address.where} but is not a dbscope template "
                    f"(no owner record in {REGISTRY_DB}.owners); dbscope will not use or drop it. Drop it yourself "
                    "if it is left over."
                )
            if exists and record is not None and record.is_template:
                if not (rebuild and record.session != self.session):
                    log.debug("reusing template %s (built by run %s)", name, record.run)
                    self._note_template_locked(name)
                    return MariaDBTemplate(fingerprint, name)
            if exists:
                log.debug("rebuilding template %s", name)
                drop_checked(conn, name, allow_kinds=("building", "template"))
            self._build(conn, name, fingerprint, migrations, seed, environment)
            self.counters["templates_built"] += 1
            self._note_template_locked(name)
            return MariaDBTemplate(fingerprint, name, built=True)
        except pymysql.Error as exc:
            raise self._error(exc, f"cannot build the template {name}") from exc
        finally:
            conn.close()  # also releases the lock

    def _build(
        self,
        conn: MariaDBConnection,
        name: str,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        environment: BuildEnvironment | None,
    ) -> None:
        started = time.perf_counter()
        record = self.owner.but(kind="building", fingerprint=fingerprint)
        rows(conn, note_owner(name, record))
        rows(conn, f"CREATE DATABASE {q(name)}")
        try:
            target = connect(self.address, name, autocommit=False)
            url = self.address.url(name, "sqlalchemy")
            env = environment(lambda fmt: self.address.url(name, fmt)) if environment is not None else None
            try:
                migrations.apply(target, url, environment=env)
                seed.apply(target, url, environment=env)
            except pymysql.Error as exc:
                raise MigrationError(
                    f"the migrations and seed ran, but committing them failed: {mask_password(str(exc))}; "
                    "the template was not saved",
                    source=seed.spec or migrations.spec,
                ) from exc
            finally:
                target.close()
            rows(conn, note_owner(name, record.but(kind="template")))
        except BaseException:
            try:
                drop_checked(conn, name, allow_kinds=("building",))
            except (pymysql.Error, DbscopeError) as cleanup:
                log.error("could not drop the half-built template %s: %s", name, cleanup)
            raise
        log.debug("built template %s in %.0f ms", name, (time.perf_counter() - started) * 1000)

    def blueprint(self, template: MariaDBTemplate) -> Blueprint:
        """The template's blueprint, read once (connected to the template itself, for its views)."""
        with template.lock:
            if template.blueprint is None:
                conn = connect(self.address, template.name)
                try:
                    template.blueprint = read_blueprint(conn, template.name)
                except pymysql.Error as exc:
                    raise self._error(exc, f"cannot read the template {template.name}") from exc
                finally:
                    conn.close()
            return template.blueprint

    # -- clones ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _creator(self) -> Iterator[MariaDBConnection]:
        try:
            conn = self._creators.get_nowait()
            if not usable(conn):
                conn = connect(self.address, REGISTRY_DB, multi=True)
        except queue.Empty:
            conn = connect(self.address, REGISTRY_DB, multi=True)
        try:
            yield conn
        finally:
            if self._closed or not conn.open or self._creators.qsize() >= DEFAULT_POOL_SIZE:
                conn.close()
            else:
                self._creators.put(conn)

    def _clone(self, name: str, blueprint: Blueprint, record: OwnerRecord) -> None:
        """Run the clone script for ``name``; a failure drops what it left (in the background)."""
        with self._creator() as creator:
            try:
                run_script(
                    creator,
                    [*clone_script(blueprint, name, before=[note_owner(name, record)]), f"USE {q(REGISTRY_DB)}"],
                )
            except pymysql.Error as exc:
                code = exc.args[0] if exc.args else None
                if code == 1007:  # ER_DB_CREATE_EXISTS
                    raise BackendUnavailableError(
                        f"cannot create {name}: it already exists (a label used twice?)"
                    ) from exc
                self._janitor.drop(name)
                with contextlib.suppress(pymysql.Error):
                    creator.close()
                if code == 1146 or code == 1049:  # the template's table or database is gone
                    raise BackendUnavailableError(
                        f"the template {blueprint.database} changed or disappeared on {self.address.where} while this "
                        f"run used it (dropped by `dbscope gc --templates` or a --dbscope-rebuild elsewhere?): {exc}; "
                        "run again"
                    ) from exc
                raise self._error(exc, f"cannot create database {name}") from exc

    def create(self, template: Any, *, label: str, owner: OwnerRecord | None = None) -> MariaDBDatabase:
        """A new database cloned from ``template``, its primary connection open."""
        self._check_open()
        name = clone_name(self.run_id, label)
        blueprint = self.blueprint(template)
        started = time.perf_counter()
        self._clone(name, blueprint, (owner or self.owner).but(kind="clone", template=template.name))
        database = MariaDBDatabase(self, name, template)
        try:
            database.open_primary()
        except BaseException:
            self._janitor.drop(name)
            raise
        self.create_ms.append((time.perf_counter() - started) * 1000)
        self.counters["created"] += 1
        return database

    def _recreate(self, database: MariaDBDatabase, template: Any) -> None:
        with self._admin.lock:
            try:
                drop_checked(self._admin.get(), database.name)
            except pymysql.Error as exc:
                raise self._error(exc, f"cannot re-create {database.name}") from exc
        self._clone(database.name, self.blueprint(template), self.owner.but(kind="clone", template=template.name))

    def _capture(self, database: MariaDBDatabase, template: Any) -> MariaDBTemplate:
        conn = database._restore_connection()
        name = clone_name(self.run_id, f"snap_{secrets.token_hex(3)}")
        try:
            current = read_blueprint(conn, database.name)
        except pymysql.Error as exc:
            raise self._error(exc, f"cannot read {database.name}") from exc
        self._clone(name, current, self.owner.but(kind="snapshot", template=database.name))
        with self._lock:
            self._snapshots.append(name)
        return MariaDBTemplate(template.fingerprint, name, blueprint=replace(current, database=name))

    def _keep(self, database: MariaDBDatabase) -> None:
        with self._admin.lock:
            rows(
                self._admin.get(),
                note_owner(database.name, self.owner.but(kind="kept", template=database.template.name)),
            )

    def _foreign_connections(
        self, name: str, own: frozenset[int], known: Collection[Hashable] | None = ()
    ) -> dict[Hashable, bool]:
        """Sessions on ``name`` that dbscope did not open; re-read briefly while one not ``known`` is closing."""
        found: dict[Hashable, bool] = {}
        for delay in (0.0, 0.01, 0.02, 0.05, 0.1) if known is not None else (0.0,):
            if delay:
                time.sleep(delay)
            with self._admin.lock:
                admin = self._admin.get()
                found = sessions_of(admin, rows(admin, sessions_statement(name)), own)
            if not set(found) - set(known or ()):
                break
        return found

    def _kill(self, ids: list[int]) -> None:
        with self._admin.lock:
            conn = self._admin.get()
            for session in ids:
                with contextlib.suppress(pymysql.Error):
                    rows(conn, f"KILL CONNECTION {int(session)}")

    # -- restore ---------------------------------------------------------------------------------

    def _restore(self, database: MariaDBDatabase, template: Any) -> None:
        if database.state is DatabaseState.DROPPED:
            raise BackendUnavailableError(f"cannot restore {database.name}: it was dropped")
        blueprint = self.blueprint(template)
        started = time.perf_counter()
        conn = database._restore_connection()
        ended, database._ended = database._ended, None
        database._fresh_mark = None
        try:
            only, state, mark = self._restore_plan(database, conn, blueprint, template, ended)
            script = restore_script(blueprint, database.name, state, quiet=_QUIET, only=only)
            if only is None:  # tables may have been made or dropped: nothing seen before holds
                database._seen = None
                if script:
                    run_script(conn, [*script, _LOUD])
                if database._tracking:
                    untracked = sorted(set(blueprint.tables) - present(conn, database.name).tracked)
                    if untracked:  # from now on their writes are noted too
                        run_script(conn, tracking_script(database.name, untracked))
                    database._restored = (template, database.write_mark(conn))
            else:  # only rows and counters: the tables and their InnoDB ids stay, one round trip
                untracked = sorted(set(blueprint.tables) - state.tracked)
                statements = [*script, _LOUD] if script else []
                statements += tracking_script(database.name, untracked) if untracked else []
                if statements:
                    found = database._run_own(conn, [*statements, writes_statement(database.name, 2**62)])
                    mark = (int(found[-1][0][0]), mark[1])
                if database._seen is not None:
                    database._seen = replace(
                        database._seen,
                        objects=Present(
                            dict.fromkeys(blueprint.tables),
                            frozenset(name for name, _ in blueprint.views),
                            frozenset(blueprint.trigger_tables),
                            frozenset(blueprint.tables),
                        ),
                    )
                database._restored = (template, mark)
            if database._tracking:
                database._fresh_mark = database._restored[1] if database._restored else None
        except pymysql.Error as exc:
            with contextlib.suppress(pymysql.Error):
                conn.execute(_LOUD)
            raise self._restore_error(exc, database) from exc
        self.counters["restores"] += 1
        log.debug(
            "restored %s from %s (%s) in %.1f ms",
            database.name,
            blueprint.database,
            "all tables" if only is None else ", ".join(sorted(blueprint.closure(only))) or "nothing written",
            (time.perf_counter() - started) * 1000,
        )

    def _restore_plan(
        self,
        database: MariaDBDatabase,
        conn: MariaDBConnection,
        blueprint: Blueprint,
        template: Any,
        ended: _Ended | None = None,
    ) -> tuple[set[str] | None, Present, Any]:
        """(the tables to restore, None for all; what the database holds now; the write mark now), one round trip.

        The objects (tables, views, triggers) are read from ``information_schema`` only when
        the server's counts say a schema statement ran since they were last seen. Right after
        the look that ended a scope with no foreign session on the database (``ended``), what
        that look read is what this round trip would read: it is used instead (the same reads
        a moment earlier, as a plan's own reads are a moment before its restore).
        """
        last = database._restored
        partial = database._tracking and last is not None and last[0] is template and last[1] is not None
        seen = database._seen
        since = last[1][0] if partial and last is not None else 2**62  # not partial: no list needed
        statements = [gate_statement(), writes_statement(database.name, since), autoinc_statement(database.name)]
        if seen is None or seen.objects is None:
            statements += [busy_statement(), *present_statements(database.name), ids_statement(database.name)]
        if ended is not None and len(statements) == 3 and (ended[0] == since or not partial):
            found = list(ended[1:])
        else:
            found = results(conn, statements)
        gate = read_gate(found[0])
        if seen is not None and seen.objects is not None and gate[0] == seen.gate[0]:
            counters = read_autoinc(conn, database.name, blueprint, found[2])
            state = replace(seen.objects, tables={t: counters.get(t) for t in seen.objects.tables})
            ids = seen.ids
        elif len(found) > 3:
            state = present_of(found[4:6])
            ids = str(found[6][0][0] or "")
            if seen is not None and gate[0] == seen.gate[0] and not found[3][0][0]:
                database._seen = replace(seen, objects=replace(state, tables={t: None for t in state.tables}))
        else:  # seen before, but a schema statement ran since: read them now
            database._seen = None
            return self._restore_plan(database, conn, blueprint, template)
        mark, written, rebuilt = read_writes([found[1], [(ids,)]], last[1] if partial and last is not None else None)
        only: set[str] | None = None
        if partial and not rebuilt and same_objects(blueprint, state):
            # a table made after the triggers were (a fixture's) has no notes: restore it always
            only = written | (set(blueprint.tables) - state.tracked)
        return only, state, mark

    # -- garbage ---------------------------------------------------------------------------------

    def _plan_sweep(self) -> list[GarbageItem]:
        with self._admin.lock:
            items = plan_garbage(self._admin.get())
            forget_dead_runs(self._admin.get())
        return items

    # -- lifecycle -------------------------------------------------------------------------------

    def _close_admin(self) -> None:
        self._admin.close()

    def __repr__(self) -> str:
        return f"<MariaDBBackend {self.address.masked_url} run={self.run_id} {'closed' if self._closed else 'open'}>"


def collect_garbage(
    url: str,
    *,
    dry_run: bool = True,
    allow_remote: bool = False,
    stale_after_s: float = STALE_AFTER_S,
    templates: bool = False,
    kept: bool = False,
) -> list[GarbageItem]:
    """List every ``dbscope_*`` database on the server with 'drop' or 'keep' and why; drop unless ``dry_run``."""
    parsed = parse_backend_url(url)
    if parsed.entry is not by_scheme("mysql"):
        raise ConfigError(f"collect_garbage needs a mysql:// or mariadb:// URL, not {parsed.masked!r}")
    address = server_address(parsed)
    check_local(address, allow_remote=allow_remote)
    conn = connect(address, address.database)
    try:
        if not rows(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [REGISTRY_DB]):
            return []
        items = plan_garbage(conn, stale_after_s=stale_after_s, templates=templates, kept=kept)
        if dry_run:
            return items

        def drop(name: str) -> bool:
            if templates and servers.TEMPLATE_NAME.fullmatch(name):  # judged again under its build lock
                return drop_unused_template(conn, name, stale_after_s=stale_after_s)
            return drop_checked(conn, name, allow_kinds=("clone", "building", "snapshot", "kept", "template"))

        result = servers.drop_garbage(
            items,
            drop,
            errors=(pymysql.Error, DbscopeError),
            describe=lambda exc: mask_password(str(exc)),
        )
        forget_dead_runs(conn, stale_after_s=stale_after_s)
        return result
    finally:
        conn.close()
