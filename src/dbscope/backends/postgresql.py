"""PostgreSQL backend: a database per scope, cloned on the server from a migrated template.

``postgresql://user[:password]@host:port/dbname``: the database in the URL is only used
to connect; dbscope creates and drops its own databases, all named ``dbscope_*`` and
carrying an owner record (see :mod:`.pg_owner`), and never drops any other.

* **Templates** ``dbscope_tpl_<fingerprint>`` are built once per server from the
  migrations and seed, under an advisory lock keyed by the fingerprint (any number of
  processes building the same one build it once; the others wait and reuse it), under a
  temporary name that is marked ``IS_TEMPLATE`` / ``ALLOW_CONNECTIONS false`` and renamed
  only when complete. A failed build leaves nothing behind. Later runs reuse them;
  ``rebuild=True`` builds again (once per session, also under pytest-xdist).
* **Clones** ``dbscope_<run>_<label>``: ``CREATE DATABASE ... TEMPLATE ... STRATEGY``
  (``DBSCOPE_PG_CLONE_STRATEGY=file_copy|wal_log``, default :data:`DEFAULT_CLONE_STRATEGY`),
  dropped ``WITH (FORCE)`` by a background janitor thread after the test.
* **Liveness**: the run registers in the ``dbscope_registry`` database, holds an advisory
  lock there for its lifetime and beats a heartbeat every few seconds, so garbage
  collection (:func:`collect_garbage`, and a quick sweep when a backend starts) never
  touches a live run's databases but cleans up after crashed ones.
* **Connections**: three per run (creating, probing, janitor) plus one per ready clone;
  :attr:`PostgreSQLBackend.pool_size` is sized from the server's free connections.

psycopg (3) is imported only when this backend is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import BackendUnavailableError, ConfigError, DbscopeError, MigrationError
from ..migrations import MigrationSet
from ..urls import BackendURL, mask_password, parse_backend_url, without_password
from . import servers
from .base import BuildEnvironment, Dialect, Look
from .janitor import Janitor
from .pg_connect import (
    START_ADVICE,
    ScopeConnection,
    ServerAddress,
    budget_message,
    check_local,
    connect,
    connection_budget,
    parameters,
    server_address,
    usable,
)
from .pg_dialect import DIALECT, PostgreSQLDialect
from .pg_owner import (
    PREFIX,
    REGISTRY_DB,
    STALE_AFTER_S,
    TEMPLATE_LOCK,
    TEMPLATE_PREFIX,
    GarbageItem,
    OwnerRecord,
    clear_pending,
    comment_on,
    drop_checked,
    drop_unused_template,
    ensure_registry,
    ensure_schema,
    forget_dead_runs,
    heartbeat,
    lock_key,
    note_pending,
    note_template,
    plan_garbage,
    read_owner,
    refusal,
    register_run,
    unregister_run,
)
from .pg_snapshot import (
    SCHEMA_SIGNATURE,
    Restored,
    Snapshot,
    WriteTracking,
    changed_sequences,
    ddl_count,
    glance,
    restore_sequences,
    take_snapshot,
)
from .registry import by_scheme
from .server_backend import ServerBackend
from .servers import DatabaseState

__all__ = [
    "CLONE_STRATEGY_ENV",
    "DEFAULT_CLONE_STRATEGY",
    "DatabaseState",
    "GarbageItem",
    "OwnerRecord",
    "PostgreSQLBackend",
    "PostgreSQLDatabase",
    "PostgreSQLDialect",
    "PostgreSQLTemplate",
    "clone_name",
    "collect_garbage",
]

log = logging.getLogger("dbscope.database")

CLONE_STRATEGY_ENV = "DBSCOPE_PG_CLONE_STRATEGY"
#: Why FILE_COPY: on tmpfs with fsync off it creates a clone of the benchmark schema in about
#: half WAL_LOG's time (benchmarks/bench_pg_clone.py times both strategies: 20 ms against
#: 41 ms on a 2 vCPU VM, PostgreSQL 15). On an ext4 server with fsync on, with a pool thread
#: cloning and the janitor dropping, FILE_COPY also got more tests through: WAL_LOG clones
#: faster there, but its drops fall behind. FILE_COPY forces two checkpoints per clone: on a
#: server others use, WAL_LOG may be kinder to them.
DEFAULT_CLONE_STRATEGY = "FILE_COPY"
_STRATEGIES = ("FILE_COPY", "WAL_LOG")
DEFAULT_POOL_SIZE = 2
#: Connections one running test needs besides the run's own three: its database's
#: primary connection and one the test (or the app under test) opens.
PER_TEST_CONNECTIONS = 2
HEARTBEAT_S = 5.0
#: create() waits (bounded) while more drops than this are pending, so a server that drops
#: slower than it clones does not pile up databases (and disk) until the end of the run.
MAX_PENDING_DROPS = 8
_MAX_NAME = 63  # NAMEDATALEN - 1, in bytes


def clone_strategy(environ: dict[str, str] | None = None) -> str:
    """The ``CREATE DATABASE ... STRATEGY`` to use: ``DBSCOPE_PG_CLONE_STRATEGY`` or the default."""
    raw = (os.environ if environ is None else environ).get(CLONE_STRATEGY_ENV, "").strip()
    if not raw:
        return DEFAULT_CLONE_STRATEGY
    value = raw.upper().replace("-", "_")
    if value not in _STRATEGIES:
        raise ConfigError(
            f"{CLONE_STRATEGY_ENV} = {raw!r} (from the environment) is not valid: use file_copy or wal_log"
        )
    return value


def clone_name(run: str, label: str) -> str:
    """``dbscope_<run>_<label>``, at most 63 bytes (see :func:`servers.clone_name`)."""
    return servers.clone_name(run, label, max_length=_MAX_NAME)


@dataclass
class PostgreSQLTemplate:
    """A migrated template database on the server."""

    fingerprint: str
    name: str
    built: bool = False  # built by this backend (False: reused)
    snapshot: Snapshot | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class PostgreSQLDatabase:
    """One scope's database on the server."""

    dialect: Dialect = DIALECT

    def __init__(self, backend: PostgreSQLBackend, name: str, template: PostgreSQLTemplate) -> None:
        self.name = name
        self.template = template
        self.state = DatabaseState.OPEN
        self._backend = backend
        self._pids: set[int] = set()  # server pids of every connection dbscope opened here
        self._primary: psycopg.Connection[Any] | None = None
        self._restorer: psycopg.Connection[Any] | None = None
        self._tracked = WriteTracking()  # see watch_writes, look and the backend's _restore
        self._ddl_seen = -1
        self._signature: str | None = None
        self.last_restore: Restored | None = None  # what the last restore did (tests, benchmarks)
        self._lock = threading.Lock()

    def url(self, fmt: str = "sqlalchemy") -> str:
        """``postgresql+psycopg://`` (sqlalchemy), ``postgresql+asyncpg://`` (async), ``postgresql://`` (dsn)."""
        return self._backend.address.url(self.name, fmt)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A new psycopg connection to this database (autocommit for clients)."""
        if self.state is DatabaseState.DROPPED:
            raise BackendUnavailableError(f"database {self.name} was dropped when its scope ended; use a new scope")
        conn = self._backend._connect(self.name, autocommit=autocommit, scoped=True)
        self._pids.add(conn.info.backend_pid)
        return conn

    def open_primary(self) -> None:
        with self._lock:
            if self._primary is None or self._primary.closed:
                self._primary = self.connect(autocommit=True)

    def primary_connection(self) -> psycopg.Connection[Any] | None:
        """The connection opened with the database (None once released).

        A ready database can wait in the pool while the server restarts: its connection is
        then dead, so it is replaced here rather than handed to a test as an opaque error.
        """
        with self._lock:
            primary = self._primary
            if primary is None or usable(primary):
                return primary
            log.warning("dbscope's connection to %s was cut (server restarted?); reconnecting", self.name)
            self._primary = self.connect(autocommit=True)
            return self._primary

    def release(self) -> None:
        with self._lock:
            for conn in (self._primary, self._restorer):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._primary = self._restorer = None
            if self.state is DatabaseState.OPEN:
                self.state = DatabaseState.RELEASED

    def foreign_connections(self, known: Collection[Hashable] | None = ()) -> Mapping[Hashable, bool]:
        """Client sessions on this database that dbscope did not open: pid -> holds a transaction."""
        return self._backend._foreign_connections(self.name, frozenset(self._pids), known)

    def end_transactions(self, keys: Iterable[Hashable]) -> str:
        """End the sessions holding those transactions: the only way to end another session's transaction."""
        pids = [int(str(k)) for k in keys]
        self._backend._terminate(pids)
        return f"ended the session(s) of pid {', '.join(map(str, pids))}"

    def capture(self, template: Any) -> PostgreSQLTemplate:
        """This database's rows and sequences now, as a snapshot ``restore()`` takes (the suite's baseline)."""
        snapshot = take_snapshot(self._restore_connection())
        # the rows as they are now: only what is written from here on differs (marks left
        # unread are of writes the snapshot may hold already: restoring those tables is harmless)
        self._tracked.held(snapshot)
        return PostgreSQLTemplate(template.fingerprint, template.name, snapshot=snapshot)

    def recreate(self, template: Any) -> None:
        """Drop (closing every session on it) and create it again under the same name."""
        self.release()
        self._tracked.held(None)
        self._tracked.catalog = None
        self._backend._recreate(self, template)
        self._tracked.installed = False
        self.open_primary()

    def schema_signature(self) -> str | None:
        """The schema's signature; read from the catalog only after DDL, when DDL is counted (a superuser)."""
        conn = self._restore_connection()
        if self._tracked.ddl_counted:
            count = ddl_count(conn)
            if count == self._ddl_seen and self._signature is not None:
                return self._signature
            self._ddl_seen = count
        row = conn.execute(SCHEMA_SIGNATURE).fetchone()
        self._signature = str(row[0]) if row else None
        return self._signature

    def watch_writes(self) -> None:
        """Statement triggers on every table record which tables other sessions wrote (see TRACK_SCHEMA)."""
        if not self._tracked.installed:
            self._tracked.install(self._restore_connection(), superuser=self._backend.superuser)
            self._ddl_seen, self._signature = -1, None

    def write_mark(self, conn: Any) -> Any:
        return None  # the tracking table itself is the mark: it is emptied after every look

    def look(self, conn: Any, mark: Any, *, known: Collection[Hashable] | None = ()) -> Look:
        """Every question of a scope boundary in one statement on ``conn``.

        Foreign sessions not in ``known`` are looked at again, briefly, as
        :meth:`foreign_connections` does (one that just closed may still be on its way out).
        """
        found = glance(conn, own=self._pids, ddl_counted=self._tracked.ddl_counted)
        self._tracked.written.update(found.written_oids)  # for the next restore: the look emptied the marks
        if not self._tracked.ddl_counted or found.ddl != self._ddl_seen:  # DDL committed since the last look
            self.schema_signature()
        sessions: Mapping[Hashable, bool] = {pid: holds for pid, holds in found.sessions.items()}
        if known is not None and set(sessions) - set(known):
            sessions = self.foreign_connections(known)
        return Look(self._signature, ", ".join(found.written) or None, None, sessions)

    def after_rollback(self, template: Any) -> None:
        """A rollback leaves sequences advanced: put them back to the template's values."""
        conn = self._restore_connection()
        restore_sequences(conn, changed_sequences(conn, self._backend.snapshot(template)))

    def in_transaction(self, conn: Any) -> bool:
        return bool(conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)

    def is_closed(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def execute(self, conn: Any, statement: str) -> None:
        conn.execute(statement)

    def restore(self, template: Any) -> None:
        """Bring the contents back to the template's in place; open connections stay open."""
        if self._backend._restore(self, template):
            self._ddl_seen = -1  # it dropped tables, uncounted: the next signature is read from the catalog

    def keep(self) -> str:
        """Keep this database after its scope (a failed test); garbage collection leaves it alone.

        Returns the URL ``psql`` opens as printed, ``postgresql://user@host:port/name``: without
        the password, which psql asks for (or reads from PGPASSWORD or ~/.pgpass).
        """
        if self._backend.throwaway:
            raise BackendUnavailableError(
                f"{self.name} lives on a throwaway cluster that is removed when the run ends; to keep a failed "
                "test's database, run it against a server (--dbscope-url postgresql://user@host:port/db)"
            )
        self._backend._keep(self)
        self.state = DatabaseState.KEPT
        return without_password(self.url("dsn"))

    def drop(self) -> None:
        """Release, then drop in the background (``WITH (FORCE)``); bounded wait in ``backend.close()``."""
        self.release()
        with self._lock:
            if self.state is DatabaseState.DROPPED:
                return
            self.state = DatabaseState.DROPPED
        self._backend._schedule_drop(self.name)

    def _restore_connection(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._restorer is None or not usable(self._restorer):
                self._restorer = self.connect(autocommit=True)
            return self._restorer

    def __repr__(self) -> str:
        return f"<PostgreSQLDatabase {self.name} on {self._backend.address.where} {self.state.value}>"


class _RunSession:
    """What the run's janitor (janitor.py) does on PostgreSQL: its lock is an advisory lock of its session."""

    errors: tuple[type[BaseException], ...] = (psycopg.Error,)
    transient: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
    gone: tuple[type[BaseException], ...] = (psycopg.errors.InvalidCatalogName,)

    def __init__(self, open_conn: Callable[[], psycopg.Connection[Any]], owner: OwnerRecord) -> None:
        self._open = open_conn
        self._owner = owner

    def open(self) -> psycopg.Connection[Any]:
        conn = self._open()
        register_run(conn, self._owner)
        return conn

    def usable(self, conn: psycopg.Connection[Any]) -> bool:
        return usable(conn)

    def heartbeat(self, conn: psycopg.Connection[Any], run: str) -> None:
        heartbeat(conn, run)

    def unregister(self, conn: psycopg.Connection[Any], run: str) -> None:
        unregister_run(conn, run)

    def drop(self, conn: psycopg.Connection[Any], name: str) -> bool:
        return drop_checked(conn, name)


class PostgreSQLBackend(ServerBackend[PostgreSQLTemplate, "psycopg.Connection[Any]"]):
    """Templates and per-scope databases on a PostgreSQL server (``postgresql://...``)."""

    dialect = DIALECT
    what = "PostgreSQL"
    driver_errors = (psycopg.Error,)
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
        parsed = parse_backend_url(url) if isinstance(url, str) else url
        self.url = parsed
        self.address: ServerAddress = server_address(parsed)
        if allow_remote is None:
            allow_remote = bool(getattr(config, "allow_remote", False))
        check_local(self.address, allow_remote=allow_remote)
        self._begin_run(run_id=run_id, session=session, config=config, close_timeout=close_timeout, on_close=on_close)
        self.strategy = clone_strategy()
        self._created: set[str] = set()
        self._app = f"dbscope {self.run_id}"
        with contextlib.ExitStack() as undo:
            maintenance = connect(self.address, self.address.maintenance_db, application_name=f"{self._app} setup")
            undo.callback(maintenance.close)
            facts = parameters(maintenance)
            self.role, self.superuser, self.server_version = facts["role"], facts["superuser"], facts["version"]
            #: the server is a throwaway cluster of this run: its databases cannot outlive it
            self.throwaway = bool(facts["throwaway"])
            if not (facts["createdb"] or facts["superuser"]):
                raise BackendUnavailableError(
                    f"role {self.role!r} on the PostgreSQL server at {self.address.where} may not create databases, "
                    "and dbscope creates one for every test. As a superuser run: "
                    f'ALTER ROLE "{self.role}" CREATEDB;  (CREATEDB is a role attribute: GRANTing another role '
                    f"does not pass it on), or put a role that has CREATEDB in dbscope_url ({self.address.masked_url})."
                )
            try:
                ensure_registry(maintenance, self.owner)
            except psycopg.Error as exc:
                raise self._error(exc, f"cannot create dbscope's registry database {REGISTRY_DB}") from exc
            maintenance.close()
            self._admin = self._connect(REGISTRY_DB, autocommit=True, role="admin", budget=False)
            undo.callback(self._admin.close)
            self._creators = queue.LifoQueue()
            self._creators.put(self._connect(REGISTRY_DB, autocommit=True, role="create"))
            undo.callback(self._close_creators)
            ensure_schema(self._admin)
            self._janitor = Janitor(
                _RunSession(
                    lambda: self._connect(REGISTRY_DB, autocommit=True, role="janitor", keepalive=True), self.owner
                ),
                self.run_id,
                interval=heartbeat_s,
            )
            undo.callback(lambda: self._janitor.close(self.close_timeout))
            self.pool_size = self._size_pool()
            if sweep:
                self._sweep()
            undo.pop_all()
        log.debug(
            "PostgreSQL backend for run %s on %s (role %s, clone strategy %s, pool size %d)",
            self.run_id,
            self.address.where,
            self.role,
            self.strategy,
            self.pool_size,
        )

    # -- connections -------------------------------------------------------------------------

    def _connect(
        self,
        dbname: str,
        *,
        autocommit: bool,
        role: str = "client",
        keepalive: bool = False,
        budget: bool = True,
        scoped: bool = False,
    ) -> psycopg.Connection[Any]:
        """A connection to ``dbname``; ``scoped``: one of a scope's (closing it cancels its statement)."""
        admin = getattr(self, "_admin", None) if budget else None
        conn = connect(
            self.address,
            dbname,
            autocommit=autocommit,
            application_name=self._app if role == "client" else f"{self._app} {role}",
            keepalive=keepalive,
            budget_from=admin,
            connection_class=ScopeConnection if scoped else psycopg.Connection,
        )
        if isinstance(conn, ScopeConnection):
            conn.close_timeout = self.close_timeout
        return conn

    def _size_pool(self) -> int:
        """How many clones to keep ready: what the server can spare, with headroom, at most 2."""
        budget = connection_budget(self._admin)
        if budget.free < PER_TEST_CONNECTIONS:
            raise BackendUnavailableError(
                f"the PostgreSQL server at {self.address.where} has too few free connections for dbscope: "
                f"{budget_message(budget, needed=PER_TEST_CONNECTIONS)} Close idle sessions, run fewer xdist "
                "workers, or raise max_connections."
            )
        headroom = max(3, budget.max_connections // 10)
        return max(0, min(DEFAULT_POOL_SIZE, budget.free - headroom - PER_TEST_CONNECTIONS))

    def _live(self, conn: psycopg.Connection[Any], dbname: str = REGISTRY_DB) -> psycopg.Connection[Any]:
        """``conn``, or a new one if the server dropped it (a restart between tests)."""
        if usable(conn):
            return conn
        log.warning("dbscope lost its connection to %s; reconnecting", self.address.where)
        return self._connect(dbname, autocommit=True, role="admin")

    def _error(self, exc: psycopg.Error, what: str) -> BackendUnavailableError:
        text = mask_password(str(exc).strip()).splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.errors.InsufficientPrivilege) and "create database" in text.lower():
            return BackendUnavailableError(
                f"{what} on {self.address.where}: {text}. Role {self.role!r} needs CREATEDB "
                f'(as a superuser: ALTER ROLE "{self.role}" CREATEDB;).'
            )
        if isinstance(exc, psycopg.errors.DiskFull):
            return BackendUnavailableError(f"{what}: the server at {self.address.where} is out of disk space ({text})")
        if isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "57P").startswith("57P"):
            # no SQLSTATE (the socket closed) or admin/crash shutdown: the session is gone
            return BackendUnavailableError(
                f"{what} on {self.address.where}: the server closed the connection ({text}): it restarted, "
                "or stopped. dbscope reconnects for the next test; if this persists, check that the server "
                f"is running. {START_ADVICE}."
            )
        return BackendUnavailableError(f"{what} on {self.address.where}: {text}")

    # -- templates ---------------------------------------------------------------------------

    def _note_template(self, name: str) -> None:
        self._admin = self._live(self._admin)
        note_template(self._admin, self.run_id, name)

    def _ensure_template(
        self,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool,
        environment: BuildEnvironment | None,
    ) -> PostgreSQLTemplate:
        name = f"{TEMPLATE_PREFIX}{fingerprint}"
        conn = self._connect(REGISTRY_DB, autocommit=True, role="build")
        try:
            key = [TEMPLATE_LOCK, lock_key(fingerprint)]
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            if not (row and row[0]):
                log.info("dbscope: waiting for another process building the template %s", name)
                conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
            exists, _, record = read_owner(conn, name)
            if exists and (record is None or not record.is_template):
                raise BackendUnavailableError(
                    f"a database named {name} exists on {self.address.where} but is not a dbscope template "
                    "(no owner record); dbscope will not use or drop it. Drop it yourself if it is left over."
                )
            if exists and record is not None and not (rebuild and record.session != self.session):
                log.debug("reusing template %s (built by run %s)", name, record.run)
                self._note_template_locked(name)
                return PostgreSQLTemplate(fingerprint, name)
            if exists:
                log.debug("rebuilding template %s", name)
                drop_checked(conn, name, allow_template=True)
            self._build(conn, name, fingerprint, migrations, seed, environment)
            self.counters["templates_built"] += 1
            self._note_template_locked(name)
            return PostgreSQLTemplate(fingerprint, name, built=True)
        except psycopg.Error as exc:
            raise self._error(exc, f"cannot build the template {name}") from exc
        finally:
            conn.close()  # also releases the advisory lock

    def _build(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        environment: BuildEnvironment | None = None,
    ) -> None:
        started = time.perf_counter()
        building = f"{name}_b{secrets.token_hex(3)}"
        record = self.owner.but(kind="building", fingerprint=fingerprint)
        note_pending(conn, building, record)
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(building)))
        try:
            conn.execute(comment_on(building, record))
            clear_pending(conn, building)
            target = self._connect(building, autocommit=False, role="build")
            url = self.address.url(building, "sqlalchemy")  # for alembic and metadata steps
            env = environment(lambda fmt: self.address.url(building, fmt)) if environment is not None else None
            try:
                migrations.apply(target, url, environment=env)
                seed.apply(target, url, environment=env)
            except psycopg.Error as exc:  # at commit: a deferred constraint, a serialization failure
                raise MigrationError(
                    f"the migrations and seed ran, but committing them failed: {mask_password(str(exc).strip())}; "
                    "the template was not saved",
                    source=seed.spec or migrations.spec,
                ) from exc
            finally:
                target.close()
            ident = sql.Identifier(building)
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(ident))
            conn.execute(comment_on(building, record.but(kind="template")))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, sql.Identifier(name)))
        except BaseException as exc:
            try:
                drop_checked(conn, building, allow_template=True, allow_kinds=("building", "template"))
            except (psycopg.Error, DbscopeError) as cleanup:
                log.error("could not drop the half-built template %s: %s", building, mask_password(str(cleanup)))
            if isinstance(exc, MigrationError):
                log.debug("template %s failed to build: %s", name, exc)
            raise
        log.debug("built template %s in %.0f ms", name, (time.perf_counter() - started) * 1000)

    # -- clones ------------------------------------------------------------------------------

    def create(self, template: Any, *, label: str, owner: OwnerRecord | None = None) -> PostgreSQLDatabase:
        """A new database cloned from ``template``, its primary connection open.

        ``owner`` replaces the run's owner record (tools and tests of garbage collection).
        """
        self._check_open()
        if not self._janitor.wait(self.close_timeout, below=MAX_PENDING_DROPS + 1):
            log.warning(
                "dbscope: %d drops pending on %s; cloning anyway", len(self._janitor.pending), self.address.where
            )
        name = clone_name(self.run_id, label)
        record = (owner or self.owner).but(kind="clone", template=template.name)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template.name)
        )
        if self.server_version >= 150000:
            statement += sql.SQL(" STRATEGY {}").format(sql.SQL(self.strategy))
        started = time.perf_counter()
        with self._creator() as creator:
            try:
                note_pending(creator, name, record)  # the owner is known before the database exists
            except psycopg.Error as exc:
                raise self._error(exc, f"cannot create database {name}") from exc
            self._clone(creator, statement, name, template)
            try:
                creator.execute(comment_on(name, record))
                clear_pending(creator, name)
                database = PostgreSQLDatabase(self, name, template)
                database.open_primary()
            except BaseException as exc:
                self._janitor.drop(name)  # in the background, retried if the server is restarting
                if isinstance(exc, psycopg.Error):
                    raise self._error(exc, f"cannot create database {name}") from exc
                raise
        elapsed = (time.perf_counter() - started) * 1000
        self.create_ms.append(elapsed)
        self.counters["created"] += 1
        log.debug("created %s from %s (%s) in %.1f ms", name, template.name, self.strategy, elapsed)
        return database

    @contextlib.contextmanager
    def _creator(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for CREATE DATABASE: the pool's thread and a test's miss clone side by side."""
        try:
            conn = self._live(self._creators.get_nowait())
        except queue.Empty:
            conn = self._connect(REGISTRY_DB, autocommit=True, role="create")
        try:
            yield conn
        finally:
            if self._closed or conn.closed or self._creators.qsize() >= DEFAULT_POOL_SIZE:
                conn.close()
            else:
                self._creators.put(conn)

    def _clone(self, creator: psycopg.Connection[Any], statement: sql.Composed, name: str, template: Any) -> None:
        try:
            creator.execute(statement)
        except psycopg.errors.InvalidCatalogName as exc:
            raise BackendUnavailableError(
                f"the template {template.name} disappeared from {self.address.where} while this run used it "
                "(dropped by `dbscope gc --templates` or a --dbscope-rebuild elsewhere?); run again"
            ) from exc
        except psycopg.errors.ObjectInUse as exc:
            raise BackendUnavailableError(
                f"cannot clone {template.name}: another session is connected to it ({exc}); "
                "disconnect it (templates accept no connections once dbscope built them)"
            ) from exc
        except psycopg.errors.DuplicateDatabase as exc:
            raise BackendUnavailableError(f"cannot create {name}: it already exists (a label used twice?)") from exc
        except psycopg.Error as exc:
            if creator.closed:  # the session was cut mid-statement: the database may exist all the same
                self._janitor.drop(name)
            raise self._error(exc, f"cannot create database {name}") from exc
        self._created.add(name)

    def drop_database(self, name: str) -> bool:
        """Drop ``name`` now if dbscope created it (prefix and owner record); refuse any other database.

        Returns False when it does not exist. Templates are dropped by :func:`collect_garbage` only,
        and another run's databases too (once that run is gone): this run drops only its own.
        """
        self._check_open()
        try:
            self._admin = self._live(self._admin)
            _, _, record = read_owner(self._admin, name)
            if record is not None and record.run != self.run_id and name.startswith(PREFIX):
                raise refusal(name, f"it belongs to dbscope run {record.run}, not to this one ({self.run_id})")
            return drop_checked(self._admin, name)
        except psycopg.Error as exc:
            raise self._error(exc, f"cannot drop {name}") from exc

    def _foreign_connections(
        self, name: str, own: frozenset[int], known: Collection[Hashable] | None = ()
    ) -> dict[Hashable, bool]:
        """Client sessions on ``name`` not opened by dbscope; re-read briefly while one not ``known`` is exiting."""
        found: dict[Hashable, bool] = {}
        for delay in (0.0, 0.01, 0.02, 0.05, 0.1) if known is not None else (0.0,):
            if delay:
                time.sleep(delay)
            self._admin = self._live(self._admin)
            rows = self._admin.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                "AND pid <> ALL(%s)",
                [name, list(own)],
            ).fetchall()
            found = {int(pid): bool(state) and (state == "active" or "transaction" in state) for pid, state in rows}
            if not set(found) - set(known or ()):
                break
        return found

    def _terminate(self, pids: list[int]) -> None:
        """End these sessions and wait (bounded) until they are gone."""
        self._admin = self._live(self._admin)
        self._admin.execute("SELECT pg_terminate_backend(pid, %s) FROM unnest(%s::int[]) AS pid", [5000, pids])

    def _recreate(self, database: PostgreSQLDatabase, template: Any) -> None:
        """Drop ``database`` now (WITH FORCE) and clone it again under its name."""
        self._admin = self._live(self._admin)
        try:
            drop_checked(self._admin, database.name)
        except psycopg.Error as exc:
            raise self._error(exc, f"cannot re-create {database.name}") from exc
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(database.name), sql.Identifier(template.name)
        )
        with self._creator() as creator:
            try:
                note_pending(creator, database.name, self.owner.but(kind="clone", template=template.name))
                self._clone(creator, statement, database.name, template)
                creator.execute(comment_on(database.name, self.owner.but(kind="clone", template=template.name)))
                clear_pending(creator, database.name)
            except psycopg.Error as exc:
                raise self._error(exc, f"cannot re-create {database.name}") from exc

    def _keep(self, database: PostgreSQLDatabase) -> None:
        self._admin = self._live(self._admin)
        self._admin.execute(comment_on(database.name, self.owner.but(kind="kept", template=database.template.name)))

    # -- restore (the reset strategy) ------------------------------------------------------------

    def snapshot(self, template: PostgreSQLTemplate) -> Snapshot:
        """The template's rows and sequences, read once from a throwaway clone."""
        with template.lock:
            if template.snapshot is None:
                started = time.perf_counter()
                copy = self.create(template, label=f"snap_{secrets.token_hex(3)}", owner=self.owner)
                try:
                    self._admin = self._live(self._admin)
                    self._admin.execute(comment_on(copy.name, self.owner.but(kind="snapshot", template=template.name)))
                    primary = copy.primary_connection()
                    assert primary is not None
                    template.snapshot = take_snapshot(primary)
                finally:
                    copy.drop()
                log.debug(
                    "read the snapshot of %s (%d tables, %d bytes) in %.0f ms",
                    template.name,
                    len(template.snapshot.tables),
                    template.snapshot.size,
                    (time.perf_counter() - started) * 1000,
                )
            return template.snapshot

    def _restore(self, database: PostgreSQLDatabase, template: Any) -> bool:
        """Restore ``database`` from ``template``'s snapshot; True when that dropped tables.

        Only the tables written since the database last held that snapshot, when dbscope
        knows which (its write tracking, see pg_snapshot.restore); every table otherwise.
        """
        if database.state is DatabaseState.DROPPED:
            raise BackendUnavailableError(f"cannot restore {database.name}: it was dropped")
        snap = self.snapshot(template)
        started = time.perf_counter()
        try:
            conn = database._restore_connection()
            done = database._tracked.restore(conn, snap, database=database.name, lock_timeout_s=self.close_timeout)
        except psycopg.Error as exc:
            raise self._error(exc, f"cannot restore {database.name} from {template.name}") from exc
        database.last_restore = done
        self.counters["restores"] += 1
        if done.untracked:
            # a table lacked its enabled tracking trigger (created later, or its triggers were
            # disabled): put the triggers back so that the next restores are partial again
            database.watch_writes()
        log.debug(
            "restored %s from %s in %.1f ms (%s)",
            database.name,
            template.name,
            (time.perf_counter() - started) * 1000,
            f"{len(done.tables)} of {len(snap.tables)} tables" if done.partial else "every table",
        )
        return done.dropped

    # -- garbage -----------------------------------------------------------------------------------

    def _plan_sweep(self) -> list[GarbageItem]:
        items = plan_garbage(self._admin, self._admin, stale_after_s=STALE_AFTER_S)
        forget_dead_runs(self._admin, stale_after_s=STALE_AFTER_S)
        return items

    # -- lifecycle ---------------------------------------------------------------------------------

    def _close_admin(self) -> None:
        self._admin.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PostgreSQLBackend {self.address.masked_url} run={self.run_id} {state}>"


def collect_garbage(
    url: str,
    *,
    dry_run: bool = True,
    allow_remote: bool = False,
    stale_after_s: float = STALE_AFTER_S,
    templates: bool = False,
    kept: bool = False,
) -> list[GarbageItem]:
    """List every ``dbscope_*`` database on the server with 'drop' or 'keep' and why.

    A database is dropped (only when ``dry_run`` is False) when its owner run is gone: its
    process on this machine is not running, or its heartbeat is older than
    ``stale_after_s`` and it holds no session on the server. A live run's databases, the
    registry, databases without an owner record and (unless asked) templates and kept
    databases are never dropped. ``templates=True`` drops templates no live run uses;
    ``kept=True`` drops databases kept for failed tests.
    """
    parsed = parse_backend_url(url)
    if parsed.entry is not by_scheme("postgresql"):
        raise ConfigError(f"collect_garbage needs a postgresql:// URL, not {parsed.masked!r}")
    address = server_address(parsed)
    check_local(address, allow_remote=allow_remote)
    with contextlib.ExitStack() as stack:
        conn = connect(address, address.maintenance_db, application_name="dbscope gc")
        stack.callback(conn.close)
        registry = None
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [REGISTRY_DB]).fetchone():
            registry = connect(address, REGISTRY_DB, application_name="dbscope gc")
            stack.callback(registry.close)
        items = plan_garbage(conn, registry, stale_after_s=stale_after_s, templates=templates, kept=kept)
        if dry_run:
            return items

        def drop(name: str) -> bool:
            if templates and servers.TEMPLATE_NAME.fullmatch(name):  # rechecked under its build lock
                return drop_unused_template(conn, registry, name, stale_after_s=stale_after_s)
            return drop_checked(conn, name, allow_template=templates)

        result = servers.drop_garbage(
            items,
            drop,
            errors=(psycopg.Error, BackendUnavailableError),
            describe=lambda exc: mask_password(str(exc)),
        )
        if registry is not None:
            forget_dead_runs(registry, stale_after_s=stale_after_s)
        return result
