"""Scope: one test's isolated database and everything opened on it."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .client import Client
from .errors import ScopeError

if TYPE_CHECKING:
    from .backends.base import Database
    from .joined import JoinedDatabase

__all__ = ["Scope", "ScopeOptions", "ScopeState"]

T = TypeVar("T")


class ScopeState(enum.Enum):
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True)
class ScopeOptions:
    """Per-scope overrides (the ``dbscope`` marker, or ``create_scope(**options)``)."""

    url: str
    migrations: str | None
    seed: str | None
    strategy: str
    close_timeout: float
    #: where each option's value came from (field name -> origin), for error messages
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


class Scope:
    """A test's scope: its database, URL and every connection dbscope tracks for it."""

    def __init__(
        self,
        scope_id: str,
        test_name: str,
        options: ScopeOptions,
        database: Database,
        *,
        on_track: Callable[[Any], None],
    ) -> None:
        self.id = scope_id
        self.test_name = test_name
        self.options = options
        self.database = database
        self.created_at = time.time()
        self._started = time.monotonic()
        self._ended: float | None = None
        self.state = ScopeState.ACTIVE
        self.connections: list[Any] = []
        self.leaked_connections = 0
        self.setup_ms = 0.0
        #: what making this scope's database ahead took (CPU time of the clone pool's thread), counted in setup_ms
        self.made_ms = 0.0
        #: the process's current scope when this one was entered (open_scope), current again at its end
        self.previous_scope_id: str | None = None
        self.teardown_ms = 0.0
        self.kept = False
        self.kept_url: str | None = None
        self.kept_note: str | None = None  # why a failed test's database could not be kept
        self.connections_opened = 0
        self.connections_closed = 0
        self.cleanup_errors: list[str] = []  # what failed while closing it, for the report
        #: what this test did that its strategy cannot undo quietly (a transaction left open, a
        #: schema change): each fails the test's teardown and names the test
        self.isolation_errors: list[str] = []
        # set by the strategy (see dbscope.strategies): what a new client borrows, and what the
        # end of the scope compares with
        self.lend: Callable[[], tuple[Any, Any, bool]] = lambda: (None, None, False)
        self.strategy_state: Any = None
        self.connections_before: Mapping[Hashable, bool] | None = None
        self.schema_before: str | None = None
        self.write_mark: Any = None
        #: under the rollback strategy: the test's connection, lent to the application's engines,
        #: sessions, threads and tasks (see dbscope.joined); None under the other strategies
        self.joined: JoinedDatabase | None = None
        self._on_track = on_track

    @property
    def active(self) -> bool:
        return self.state is ScopeState.ACTIVE

    def _check_active(self) -> None:
        if self.state is not ScopeState.ACTIVE:
            raise ScopeError(
                f"scope {self.id} (test {self.test_name!r}) is {self.state.value}; open a new scope for new work"
            )

    def url(self, fmt: str = "sqlalchemy") -> str:
        """This scope's database URL: ``sqlalchemy`` (default), ``async`` or ``dsn``."""
        return self.database.url(fmt)

    def client(self) -> Client:
        """A new client on this scope's database, closed when the scope ends."""
        self._check_active()
        connection, lock, joined = self.lend()
        client = Client(
            self.database.connect,
            self.database.dialect,
            scope_id=self.id,
            test_name=self.test_name,
            close_timeout=self.options.close_timeout,
            connection=connection,
            in_outer_transaction=joined,
            lock=lock,
        )
        return self.track(client)

    def connect(self) -> Any:
        """A new DB-API connection to this scope's database, closed when the scope ends."""
        self._check_active()
        return self.track(self.database.connect())

    def track(self, resource: T) -> T:
        """Close ``resource`` (anything with ``close()``) when this scope ends."""
        self._check_active()
        if not callable(getattr(resource, "close", None)):
            raise TypeError(f"cannot track {resource!r}: it has no close() method")
        self.connections.append(resource)
        self.connections_opened += 1
        self._on_track(resource)
        return resource

    @property
    def connection_count(self) -> int:
        return sum(1 for c in self.connections if not getattr(c, "closed", False))

    @property
    def duration_ms(self) -> float:
        end = self._ended if self._ended is not None else time.monotonic()
        return round((end - self._started) * 1000, 3)

    def stats(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "test_name": self.test_name,
            "connection_count": self.connection_count,
            "duration_ms": self.duration_ms,
            "migration_completed": True,  # a scope exists only once its database is migrated
        }

    def __repr__(self) -> str:
        return f"<Scope {self.id} test={self.test_name!r} {self.state.value}>"
