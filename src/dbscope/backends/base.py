"""The small interface every backend implements.

A backend builds a template database from migrations once, clones it into one
database per scope, and drops those databases again. SQLite is the reference
implementation; PostgreSQL implements the same protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..migrations import MigrationSet

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL

__all__ = [
    "Backend",
    "BuildEnvironment",
    "BackendType",
    "Checkup",
    "Database",
    "Dialect",
    "Garbage",
    "GarbageList",
    "GarbageRequest",
    "Look",
    "SharedServer",
    "Template",
    "release_and_drop",
]


#: From the address of a database being built (format -> URL or part) to the environment
#: variables that should hold it while its migrations run.
BuildEnvironment = Callable[[Callable[[str], str]], Mapping[str, str]]


class Dialect(Protocol):
    """What the client needs to know about the SQL of a backend."""

    name: str

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        """Adapt ``?``/``:name`` placeholders to the driver's paramstyle."""
        ...

    def begin(self) -> str: ...


class Template(Protocol):
    """A migrated template, keyed by the fingerprint of its migrations and seed."""

    fingerprint: str


@dataclass(frozen=True)
class Look:
    """What one look at a worker's database found, at a scope's start or end (see :meth:`Database.look`)."""

    #: the schema's signature (see :meth:`Database.schema_signature`)
    signature: str | None
    #: what other connections committed since the mark given (tables, or "changes"), None for nothing
    written: str | None
    #: a write mark as of this look, for the next look
    mark: Any
    #: the foreign connections (see :meth:`Database.foreign_connections`)
    connections: Mapping[Hashable, bool]


class Database(Protocol):
    """One scope's database, created from a template."""

    name: str
    dialect: Dialect

    def url(self, fmt: str = "sqlalchemy") -> str:
        """The database's URL as ``sqlalchemy`` URL, ``async`` URL or plain ``dsn``."""
        ...

    def connect(self, *, autocommit: bool = False) -> Any:
        """A new DB-API connection to this database."""
        ...

    def primary_connection(self) -> Any:
        """dbscope's own autocommit connection to this database, or None to open a new one."""
        ...

    def release(self) -> None:
        """Close what keeps the database alive on dbscope's side (not the database)."""
        ...

    def keep(self) -> str:
        """Keep this database after its scope; return a URL (or path) its own tool opens as printed."""
        ...

    def foreign_connections(self, known: Collection[Hashable] | None = ()) -> Mapping[Hashable, bool]:
        """The connections to this database that dbscope did not open and that are open now.

        Keys identify connections (a server pid, a connection object's id); each value says
        whether that connection holds a transaction open. The leak probe of every strategy.
        A server backend looks again, briefly, while connections not in ``known`` are there
        (one just closed may still be on its way out); ``known=None``: look once.
        """
        ...

    def end_transactions(self, keys: Iterable[Hashable]) -> str:
        """End the transactions those foreign connections hold (roll back, or end the session); say how."""
        ...

    def restore(self, template: Template) -> None:
        """Bring the contents back to the template's, in place (the reset strategy)."""
        ...

    def capture(self, template: Template) -> Template:
        """This database's contents now, as something ``restore()`` takes (the suite's baseline)."""
        ...

    def recreate(self, template: Template) -> None:
        """Drop and create the database again from ``template`` under the same name and URL."""
        ...

    def schema_signature(self) -> str | None:
        """A value that changes when the schema changes and ``restore`` would not undo it; None if it always does."""
        ...

    def watch_writes(self) -> None:
        """Prepare the write marks of :meth:`look` on this database (once, for the worker's database)."""
        ...

    def write_mark(self, conn: Any) -> Any:
        """Something :meth:`look` compares with, read on ``conn`` outside a transaction."""
        ...

    def look(self, conn: Any, mark: Any, *, known: Collection[Hashable] | None = ()) -> Look:
        """Signature, writes since ``mark`` and foreign connections at once, on ``conn``; one round trip on a server.

        What the worker's database is asked at every scope boundary.
        """
        ...

    def after_rollback(self, template: Template) -> None:
        """Undo what a rolled-back transaction leaves behind (PostgreSQL's sequences)."""
        ...

    def in_transaction(self, conn: Any) -> bool:
        """Whether ``conn`` (one of this database's DB-API connections) has a transaction open."""
        ...

    def is_closed(self, conn: Any) -> bool:
        """Whether ``conn`` was closed (or its session lost)."""
        ...

    def execute(self, conn: Any, statement: str) -> None:
        """Run one statement without parameters on ``conn``."""
        ...

    def drop(self) -> None:
        """Remove the database. Never touches a database this backend did not create."""
        ...


def release_and_drop(database: Database, during: str, *, problems: list[str] | None = None) -> bool:
    """Release and drop a database, logging (not raising) what fails; True if both worked.

    Each failure is also described in ``problems``, when given (the scope's, for the report).
    """
    ok = True
    for step in (database.release, database.drop):
        try:
            step()
        except Exception as exc:
            ok = False
            logging.getLogger("dbscope.database").error("%s: %s: %s", during, database.name, exc)
            if problems is not None:
                problems.append(f"{during}: could not {step.__name__} {database.name}: {type(exc).__name__}: {exc}")
    return ok


class Backend(Protocol):
    """Builds templates and creates and drops the databases of scopes.

    Two attributes tune the clone pool where a backend has them: ``pool_size`` (how many
    clones to keep ready; a server sizes it from its connections) and ``clones_in_process``
    (true where a clone is this process's own work, so the pool clones ahead only while the
    tests leave it idle time; see :mod:`dbscope.pool`).
    """

    def template(
        self,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool = False,
        environment: BuildEnvironment | None = None,
    ) -> Template:
        """The template for these migrations and seed, built once (or reused from a cache).

        ``environment``, given the address of the database being built (a function from a
        format, as ``Database.url`` takes, to the URL or part), names the variables to set
        while the migrations run: the app's own settings then point at that database.
        """
        ...

    def create(self, template: Template, *, label: str) -> Database: ...

    def close(self) -> None: ...


# -- backend types: what dbscope asks of a kind of backend, one per registry entry -----------


class SharedServer(Protocol):
    """A server one process starts for every parallel worker (the pytest-xdist controller's)."""

    @property
    def url(self) -> str:
        """The URL workers use instead of the configured one."""
        ...

    def stop(self) -> None: ...


class Garbage(Protocol):
    """Something a run left behind, and what ``dbscope gc`` does with it."""

    @property
    def name(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def action(self) -> str:
        """``drop`` or ``keep``."""
        ...


@dataclass(frozen=True)
class GarbageRequest:
    """What ``dbscope gc`` was asked to do."""

    dry_run: bool = True
    templates: bool = False  # drop cached templates too
    kept: bool = False  # drop the databases --dbscope-keep-failed kept
    stale_after_s: float | None = None  # None: the backend's own default
    allow_remote: bool = False


@dataclass(frozen=True)
class GarbageList:
    """What ``dbscope gc`` found: the items, or why a backend never leaves anything."""

    items: Sequence[Garbage] = ()
    nothing_because: str | None = None


class Checkup(Protocol):
    """Where ``dbscope doctor`` writes: one line per check (ok, n/a, PROBLEM), advice at the end."""

    def ok(self, what: str, detail: str) -> None: ...

    def na(self, what: str, detail: str) -> None: ...

    def problem(self, what: str, detail: str) -> None: ...

    def advise(self, advice: str) -> None: ...


class BackendType(Protocol):
    """A kind of backend, as the registry names it: opens backends and answers for them.

    Everything that differs between backends outside a running backend (``dbscope gc``,
    ``dbscope doctor``, a server shared by pytest-xdist workers) is asked here, so no
    caller branches on which backend a URL chose.
    """

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception classes: a check that raises one of them found a problem."""
        ...

    @property
    def shares_server(self) -> bool:
        """Whether parallel workers use one server the controller starts (:meth:`start_shared_server`)."""
        ...

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend: ...

    def start_shared_server(self, url: BackendURL, *, config: Config) -> SharedServer | None:
        """Under pytest-xdist, run once by the controller: the server every worker uses; None if none is needed."""
        ...

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        """What runs left behind (``dbscope gc``); dropped unless ``request.dry_run``."""
        ...

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        """Before ``dbscope doctor`` rebuilds the template: look at the cached one; the result reports on it after."""
        ...

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        """Advice for ``dbscope doctor`` once clones took ``clone_ms`` (the median)."""
        ...
