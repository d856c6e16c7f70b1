"""Strategies: how a scope gets its database and what happens to it when the scope ends.

A strategy is a small object behind the :class:`Strategy` protocol, chosen by name from
:data:`STRATEGIES`; the manager holds one instance of each it has used and never asks
which one it has. Each keeps the same promises on every backend:

* a test starts on the template's contents (or its own fresh clone of them);
* nothing a test writes, through any connection, reaches the next test;
* a connection the test opened and left open is counted as a leak, against that test;
* a transaction an application left open, or a schema change the strategy cannot
  undo, is an isolation error against the test that caused it, and the next test
  still starts clean.

``clone``: a fresh database for every scope, dropped at its end.
``reset``: one database per worker whose URL never changes; its contents are restored
from the template after every scope.
``rollback``: one database per worker; every scope runs inside a transaction that is
rolled back at its end. Commits made by other connections are noticed and restored.
``worker``: one database per worker, never restored (suites that clean up after
themselves): parallel safety and the report, not isolation between tests.

The backend answers the questions a strategy asks (who else is connected, has anyone
else committed, did the schema change); no strategy names a backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .backends.base import Look, release_and_drop
from .errors import ConfigError, DbscopeError, IsolationError
from .joined import LOCK_WAIT_S, JoinedDatabase
from .urls import mask_password

if TYPE_CHECKING:
    from .backends.base import Database, Template
    from .scope import Scope, ScopeOptions

__all__ = [
    "STRATEGIES",
    "CloneStrategy",
    "ResetStrategy",
    "RollbackStrategy",
    "Strategy",
    "WorkerStrategy",
    "strategy_named",
]

log = logging.getLogger("dbscope.isolation")

#: What a client is given: (a connection to borrow, or None for a new one; a lock to share it;
#: whether it is joined to an outer transaction)
Lending = tuple[Any, Any, bool]


class Resources(Protocol):
    """What the manager lends a strategy: templates, pooled clones, worker databases."""

    worker_id: str

    def clone(self, opts: ScopeOptions) -> Database:
        """A fresh database from the pool of these options."""
        ...

    def template_of(self, opts: ScopeOptions) -> tuple[Any, Template]:
        """The backend and the built template for these options."""
        ...


class Strategy(Protocol):
    """One isolation policy. The manager calls these in a scope's life, in this order."""

    name: str
    #: one database per worker whose URL is set in the environment before conftests are
    #: imported; it is there for every test, so every test gets a scope that restores it
    fixed_url: bool

    def open(self, resources: Resources, opts: ScopeOptions, test_name: str) -> Database:
        """The database for a new scope, ready for the test."""
        ...

    def attach(self, scope: Scope) -> None:
        """Called once the Scope object exists: note what the end of the scope compares with."""
        ...

    def end(self, scope: Scope) -> None:
        """After dbscope's own connections closed and reset hooks ran: leaks, restore or drop."""
        ...

    def emergency(self, scope: Scope) -> bool:
        """Leave nothing behind after a failed end; never raises. True if all went cleanly."""
        ...

    def environment(self, resources: Resources, opts: ScopeOptions) -> Database | None:
        """For ``fixed_url`` strategies: the worker's database (created now); else None."""
        ...

    def close(self) -> None:
        """Release everything this strategy keeps (worker databases)."""
        ...


def _record_leaks(scope: Scope, leaked: Mapping[Hashable, bool]) -> None:
    """Count the connections the test opened and left open (leaks of this test)."""
    scope.leaked_connections = len(leaked)
    if leaked:
        log.warning(
            "connection leak in test %r: %d connection(s) to %s opened during the test and still open after it "
            "(scope %s); dispose engines and close connections the test opened",
            scope.test_name,
            len(leaked),
            scope.database.name,
            scope.id,
        )


def _open_transactions(scope: Scope, others: Mapping[Hashable, bool]) -> None:
    """Roll back (or end) transactions other connections left open; each is an error of this test."""
    holders = [key for key, in_transaction in others.items() if in_transaction]
    if not holders:
        return
    ended = scope.database.end_transactions(holders)
    scope.isolation_errors.append(
        f"test {scope.test_name!r} left {len(holders)} transaction(s) open on {scope.database.name} "
        f"through a connection dbscope did not open ({ended}); commit or roll back before the test ends "
        "(a session or connection the app keeps open across requests?)"
    )


class CloneStrategy:
    """A fresh database for every scope: nothing to restore, the database is dropped."""

    name = "clone"
    fixed_url = False

    def open(self, resources: Resources, opts: ScopeOptions, test_name: str) -> Database:
        return resources.clone(opts)

    def attach(self, scope: Scope) -> None:
        # the first client borrows the connection that keeps the database alive (one connection
        # and one schema parse less per test); later clients open their own
        lent: list[bool] = []

        def lend() -> Lending:
            if lent:
                return None, None, False
            lent.append(True)
            return scope.database.primary_connection(), None, False

        scope.lend = lend

    def end(self, scope: Scope) -> None:
        database = scope.database
        if scope.kept:
            try:
                scope.kept_url = database.keep()
            except DbscopeError as exc:  # a database that cannot outlive the run
                scope.kept = False
                scope.kept_note = f"not kept: {exc}"
            else:
                log.warning("kept the database of failed test %r: %s", scope.test_name, mask_password(scope.kept_url))
        others = database.foreign_connections()
        _record_leaks(scope, others)
        database.release()
        if not scope.kept:
            database.drop()

    def emergency(self, scope: Scope) -> bool:
        return release_and_drop(scope.database, f"emergency cleanup of scope {scope.id}", problems=scope.cleanup_errors)

    def environment(self, resources: Resources, opts: ScopeOptions) -> Database | None:
        return None

    def close(self) -> None:
        pass


@dataclass
class WorkerDatabase:
    """The one database a worker keeps for a shared strategy, and what its restores need."""

    database: Database
    template: Template
    lock: threading.RLock = field(default_factory=threading.RLock)
    outer: Any = None  # dbscope's connection to it: rollback's transactions, the write marks
    #: the suite's baseline: what its own session/package/module/class fixtures built between
    #: tests (None: the template's contents). Every scope ends restored to it.
    baseline: Template | None = None
    signature: str | None = None  # the baseline's schema signature
    mark: Any = None  # the write mark taken when the database was last restored
    dirty_after: str | None = None  # the test after which the database could not be restored
    in_use_by: str | None = None  # the test whose scope has the database now (reset, rollback)

    @property
    def restore_point(self) -> Template:
        return self.baseline if self.baseline is not None else self.template


class _Shared:
    """What reset and rollback have in common: one database per worker, restored to the suite's baseline.

    The baseline is the template's contents plus what the suite's own higher-scoped
    fixtures wrote between tests (a session fixture running ``create_all`` or adding a
    superuser, a module fixture creating its tables and dropping them at the end): when a
    scope starts, a database that changed since the last restore (another connection
    committed, or the schema changed) is taken as the new baseline, and every scope ends
    restored to it.

    The worker's database is one scope's at a time: a scope opened while another has it (a
    test opening extra scopes with the manager's API, or scopes opened from threads) gets a
    fresh clone of the template of its own, as under ``clone``, dropped at its end. Sharing
    it would start that scope on the other test's rows, and its end (a restore, or the
    rollback of a transaction it cannot open inside the other's) would undo the other's.
    """

    name = "shared"
    fixed_url = True
    _keeps_for_next = "restores its database for the next test"
    #: whether a scope opened while another has the worker's database gets a clone of its own
    _one_scope_at_a_time = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[tuple[str, str | None, str | None], WorkerDatabase] = {}
        self._clones = CloneStrategy()  # for a scope opened while the worker's database is in use

    def _worker(self, resources: Resources, opts: ScopeOptions) -> WorkerDatabase:
        key = (opts.url, opts.migrations, opts.seed)
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                backend, template = resources.template_of(opts)
                # named after the strategy alone ("reset"): backends make names unique per process,
                # and sqlite:// can then give the same URL string on every worker (stable test ids)
                database = backend.create(template, label=self.name)
                worker = self._workers[key] = WorkerDatabase(database, template)
                self._prepare(worker)
                log.debug("worker %s keeps %s for the %s strategy", resources.worker_id, database.name, self.name)
            return worker

    def _prepare(self, worker: WorkerDatabase) -> None:
        """(Again, after a re-create:) dbscope's connection, write marks, the schema's signature."""
        database = worker.database
        database.watch_writes()
        if worker.outer is None or database.is_closed(worker.outer):
            worker.outer = database.primary_connection() or database.connect(autocommit=True)
        worker.signature = database.schema_signature()
        worker.mark = database.write_mark(worker.outer)

    def environment(self, resources: Resources, opts: ScopeOptions) -> Database | None:
        return self._worker(resources, opts).database

    def open(self, resources: Resources, opts: ScopeOptions, test_name: str) -> Database:
        worker = self._worker(resources, opts)
        if self._one_scope_at_a_time:
            with self._lock:
                holder = worker.in_use_by
                if holder is None:
                    worker.in_use_by = test_name
            if holder is not None:
                log.debug(
                    "%s is in use by the scope of %r: scope %r gets a clone of its own",
                    worker.database.name,
                    holder,
                    test_name,
                )
                return self._clones.open(resources, opts, test_name)
        try:
            if worker.dirty_after is not None:  # never hand out the worker's database with another test's data
                try:
                    self._restore(worker)
                except DbscopeError as exc:
                    raise IsolationError(
                        f"the {self.name} strategy's database {worker.database.name} could not be restored after "
                        f"test {worker.dirty_after!r}, so test {test_name!r} cannot start on a clean database: {exc}"
                    ) from exc
                worker.dirty_after = None
        except BaseException:
            worker.in_use_by = None
            raise
        return worker.database

    def _worker_of(self, scope: Scope) -> WorkerDatabase | None:
        """The worker database a scope has; None for a clone of its own."""
        for worker in list(self._workers.values()):
            if worker.database is scope.database:
                return worker
        return None

    def _free(self, scope: Scope) -> None:
        worker = self._worker_of(scope)
        if worker is not None:
            worker.in_use_by = None

    def _opening(self, database: Database) -> str | None:
        """A statement run on dbscope's connection right after the look that starts a scope."""
        return None

    def attach(self, scope: Scope) -> None:
        if self._worker_of(scope) is None:
            self._clones.attach(scope)
            return
        worker = self._workers_of(scope)
        scope.strategy_state = worker
        database = scope.database
        # one look (one round trip on a server) for the schema, the writes and the connections
        look = database.look(worker.outer, worker.mark, known=None)
        worker.mark = look.mark
        if look.signature != worker.signature or look.written:
            # between tests only the suite's own fixtures run: what they built is the new baseline
            worker.baseline = database.capture(worker.template)
            worker.signature = look.signature
            worker.mark = database.write_mark(worker.outer)
            log.debug(
                "%s changed between tests (%s): new baseline for %r", database.name, look.written, scope.test_name
            )
        opening = self._opening(database)
        if opening is not None:
            database.execute(worker.outer, opening)
        scope.schema_before = worker.signature
        scope.connections_before = look.connections
        scope.lend = lambda: (None, None, False)

    def _workers_of(self, scope: Scope) -> WorkerDatabase:
        for worker in self._workers.values():
            if worker.database is scope.database:
                return worker
        raise DbscopeError(f"scope {scope.id} has no database of the {self.name} strategy")

    def _closing(self, scope: Scope, worker: WorkerDatabase) -> str | None:
        """A statement run on dbscope's connection before the look that ends a scope."""
        return None

    def end(self, scope: Scope) -> None:
        if scope.strategy_state is None:  # a clone of its own
            self._clones.end(scope)
            return
        try:
            self._end_shared(scope)
        finally:
            self._free(scope)

    def _end_shared(self, scope: Scope) -> None:
        worker: WorkerDatabase = scope.strategy_state
        before = scope.connections_before or {}
        database = scope.database
        closing = self._closing(scope, worker)
        if closing is not None:
            database.execute(worker.outer, closing)
        look = database.look(worker.outer, worker.mark, known=before)
        others = look.connections
        _record_leaks(scope, {k: v for k, v in others.items() if k not in before})
        _open_transactions(scope, others)
        if scope.kept:
            scope.kept_note = (
                f"not kept: the {self.name} strategy {self._keeps_for_next}; run this test "
                "with --dbscope-strategy clone --dbscope-keep-failed to keep its database"
            )
            log.warning("test %r failed; its database was %s", scope.test_name, scope.kept_note)
        worker.dirty_after = scope.test_name  # cleared once the restore below succeeds
        self._end(scope, worker, look, closing)
        worker.dirty_after = None

    def _end(self, scope: Scope, worker: WorkerDatabase, look: Look, closing: str | None) -> None:
        """Bring the database back for the next scope (and set ``worker.mark`` for it)."""
        raise NotImplementedError

    def _restore(self, worker: WorkerDatabase) -> None:
        worker.database.restore(worker.restore_point)

    def _signature_after_restore(self, scope: Scope, worker: WorkerDatabase, look: Look) -> str | None:
        """The schema's signature after a restore, which may undo DDL too (PostgreSQL drops the tables
        the template lacks): asked again only when the look that ended the scope saw it changed."""
        if look.signature == scope.schema_before:
            return look.signature
        return worker.database.schema_signature()

    def _restore_schema(self, scope: Scope, worker: WorkerDatabase, signature: str | None) -> bool:
        """A schema (``signature``, as the scope ended) the restore cannot undo: re-create the database in place.

        Says which test did it. True when the database was re-created (and brought back to
        the baseline).
        """
        if signature == scope.schema_before:
            return False
        worker.database.recreate(worker.template)
        signature = worker.signature
        self._prepare(worker)
        if worker.baseline is not None:
            worker.database.restore(worker.baseline)
            worker.signature = signature
            worker.mark = worker.database.write_mark(worker.outer)
        scope.isolation_errors.append(
            f"test {scope.test_name!r} changed the schema of {worker.database.name} (created, dropped or altered "
            f"tables); the {self.name} strategy restores rows, not the schema, so dbscope re-created the database "
            "and closed the connections open on it. Give tests that change the schema "
            "@pytest.mark.dbscope(strategy='clone')."
        )
        return True

    def emergency(self, scope: Scope) -> bool:
        if self._worker_of(scope) is None:
            return self._clones.emergency(scope)
        worker: WorkerDatabase | None = scope.strategy_state
        try:
            if worker is None:  # it failed before it was attached: nothing of it in the database yet
                return True
            self._restore(worker)
            worker.dirty_after = None
            return True
        except Exception as exc:
            log.error("emergency cleanup of scope %s: could not restore %s: %s", scope.id, scope.database.name, exc)
            return False
        finally:
            self._free(scope)

    def close(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            release_and_drop(worker.database, f"closing the {self.name} strategy's database")


class ResetStrategy(_Shared):
    """One database per worker, restored to the suite's baseline after every scope."""

    name = "reset"

    def _end(self, scope: Scope, worker: WorkerDatabase, look: Look, closing: str | None) -> None:
        try:
            self._restore(worker)
        except DbscopeError:
            if look.signature == scope.schema_before:
                raise  # not a schema change (a lock held too long): the error says what
        signature = self._signature_after_restore(scope, worker, look)
        if not self._restore_schema(scope, worker, signature):
            worker.mark = worker.database.write_mark(worker.outer)


class RollbackStrategy(_Shared):
    """One database per worker; each scope is a transaction rolled back at its end.

    Every client of the scope works inside that transaction (its own transactions become
    savepoints), and so do the application's engines and sessions joined to it
    (``scope.joined``, see dbscope.joined). Connections the application opens on its own
    cannot share it: what they commit is noticed (the backend's write marks) and the
    database restored to the suite's baseline.
    """

    name = "rollback"

    def environment(self, resources: Resources, opts: ScopeOptions) -> Database | None:
        # before any conftest or app module is imported: an engine the app builds and connects
        # at import gets its connections noted, so the first test's scope can replace them
        from .joined import install_engine_hooks

        install_engine_hooks()
        return super().environment(resources, opts)

    def _opening(self, database: Database) -> str | None:
        # after the look that starts the scope: its write mark is read before BEGIN (inside
        # the transaction the read could hold a lock all test long)
        return str(database.dialect.begin())

    def attach(self, scope: Scope) -> None:
        super().attach(scope)
        worker: WorkerDatabase | None = scope.strategy_state
        if worker is None:  # a clone of its own: a scope opened while the worker's database is in use
            return
        # a lock of this scope's own: a thread of an earlier test that still holds its lock (in a
        # transaction it began) cannot hold up this one; its next statement names its test
        worker.lock = threading.RLock()
        scope.lend = lambda: (worker.outer, worker.lock, True)
        database = scope.database
        scope.joined = JoinedDatabase(
            worker.outer,
            worker.lock,
            url=database.url("sqlalchemy"),
            async_url=database.url("async"),
            test_name=scope.test_name,
            scope_id=scope.id,
            lock_wait=max(LOCK_WAIT_S, scope.options.close_timeout),
        )

    def end(self, scope: Scope) -> None:
        self._unjoin(scope)
        super().end(scope)

    def emergency(self, scope: Scope) -> bool:
        self._unjoin(scope)
        return super().emergency(scope)

    @staticmethod
    def _unjoin(scope: Scope) -> None:
        """Before the scope's ROLLBACK: the app's joined connections end, its engines are given back."""
        if scope.joined is not None:
            scope.joined.close(
                f"by dbscope when scope {scope.id} ended (end of test {scope.test_name!r})",
                timeout=scope.options.close_timeout,
            )

    def _closing(self, scope: Scope, worker: WorkerDatabase) -> str | None:
        if scope.database.in_transaction(worker.outer):
            return "ROLLBACK"
        log.warning(
            "test %r ended the rollback strategy's transaction itself (an explicit COMMIT?); "
            "restoring the database instead",
            scope.test_name,
        )
        return None

    def _end(self, scope: Scope, worker: WorkerDatabase, look: Look, closing: str | None) -> None:
        database = scope.database
        if closing is None:  # the test committed the scope's transaction: restore, as reset does
            self._restore(worker)
            if not self._restore_schema(scope, worker, self._signature_after_restore(scope, worker, look)):
                worker.mark = database.write_mark(worker.outer)
            return
        if self._restore_schema(scope, worker, look.signature):
            return
        if look.written:
            # another connection (the app's own engine) committed: a rollback cannot undo that
            log.warning(
                "other connections committed to %s during test %r under the rollback strategy (%s); restoring it",
                database.name,
                scope.test_name,
                look.written,
            )
            self._restore(worker)
            worker.mark = database.write_mark(worker.outer)
        else:
            database.after_rollback(worker.restore_point)
            worker.mark = look.mark


class WorkerStrategy(_Shared):
    """One database per worker, never restored: for suites that clean up after themselves.

    What it gives is parallel safety (each xdist worker, or the one process, has its own
    database, in the environment before conftests are imported) and the same leak
    checks and report as the other strategies; not isolation between tests.
    """

    name = "worker"
    _keeps_for_next = "hands its database to the tests that follow"
    _one_scope_at_a_time = False  # no isolation to keep: every scope of the worker shares its database

    def attach(self, scope: Scope) -> None:
        scope.strategy_state = self._workers_of(scope)
        scope.connections_before = scope.database.foreign_connections(known=None)
        scope.lend = lambda: (None, None, False)

    def _end(self, scope: Scope, worker: WorkerDatabase, look: Look, closing: str | None) -> None:
        worker.mark = look.mark  # the suite cleans up after itself: what a test leaves is the next test's


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "clone": CloneStrategy,
    "reset": ResetStrategy,
    "rollback": RollbackStrategy,
    "worker": WorkerStrategy,
}


def strategy_named(name: str) -> Strategy:
    """A new instance of the strategy called ``name``."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    return factory()
