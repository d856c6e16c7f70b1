"""What a server backend's run is, whichever server: its identity, its templates, its drops, its end.

:class:`ServerBackend` is the base of ``PostgreSQLBackend`` and ``MariaDBBackend``. It
holds what a run on a server does the same way on both: who the run is (its id, its
xdist session, its owner record), the templates it has looked up (each fingerprint
built or found once per process), the drops it hands to its janitor (janitor.py), the
start-up sweep of what dead runs left, and closing, after which nothing more is done.
A subclass says how its server builds a template, notes that the run uses it, plans
the sweep and closes its own connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from ..errors import BackendUnavailableError, DbscopeError
from ..urls import mask_password
from .servers import PREFIX, GarbageItem, OwnerRecord

if TYPE_CHECKING:
    from ..migrations import MigrationSet
    from .base import BuildEnvironment
    from .janitor import Janitor

__all__ = ["ServerBackend"]

log = logging.getLogger("dbscope.database")


class _Template(Protocol):
    @property
    def name(self) -> str: ...


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Template)
C = TypeVar("C", bound=_Closable)


class ServerBackend(Generic[T, C]):
    """A run's backend on a database server; see the module docstring."""

    #: How messages name the server: "PostgreSQL", "MariaDB".
    what: ClassVar[str]
    #: The driver's errors, which a note or a sweep logs instead of raising.
    driver_errors: ClassVar[tuple[type[BaseException], ...]]

    _janitor: Janitor
    _creators: queue.LifoQueue[C]

    def _begin_run(
        self,
        *,
        run_id: str | None,
        session: str | None,
        config: Any,
        close_timeout: float | None,
        on_close: Callable[[], None] | None,
    ) -> None:
        """Who this run is, and nothing done yet (the first step of a subclass's ``__init__``)."""
        self.close_timeout = float(
            close_timeout if close_timeout is not None else getattr(config, "close_timeout", 5.0)
        )
        self._on_close = on_close
        self.run_id = run_id or secrets.token_hex(4)
        self.session = session or os.environ.get("PYTEST_XDIST_TESTRUNUID") or self.run_id
        self.owner = OwnerRecord.for_run(self.run_id, session=self.session)
        self._lock = threading.Lock()
        self._templates: dict[str, T] = {}
        self._snapshots: list[str] = []  # baselines this run captured, dropped at close
        self._closed = False
        self.counters: Counter[str] = Counter()
        self.create_ms: list[float] = []

    # -- what a subclass says --

    def _ensure_template(
        self,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool,
        environment: BuildEnvironment | None,
    ) -> T:
        """The template of ``fingerprint`` on the server: found, or built under the server's lock.

        Before it lets go of that lock it calls :meth:`_note_template_locked`.
        """
        raise NotImplementedError

    def _note_template(self, name: str) -> None:
        """Record on the server that this run uses the template ``name`` (so no ``gc`` drops it)."""
        raise NotImplementedError

    def _note_template_locked(self, name: str) -> None:
        """Note the use while the template's build lock is held: ``dbscope gc --templates`` takes that
        lock and judges again under it, so it cannot drop the template between its finding and this note."""
        with contextlib.suppress(*self.driver_errors):
            self._note_template(name)

    def _plan_sweep(self) -> list[GarbageItem]:
        """What dead runs left (with ``drop`` or ``keep``), forgetting those runs."""
        raise NotImplementedError

    def _close_admin(self) -> None:
        """Close the run's own administration connection."""
        raise NotImplementedError

    @staticmethod
    def _refusal(name: str, why: str) -> BackendUnavailableError:
        """The error that refuses to drop ``name``, saying where its owner would be recorded."""
        raise NotImplementedError

    # -- templates --

    def template(
        self,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool = False,
        environment: BuildEnvironment | None = None,
    ) -> T:
        """The template for these migrations + seed: reused from the server, or built once."""
        from ..migrations import combined_fingerprint

        self._check_open()
        fingerprint = combined_fingerprint(migrations, seed)
        with self._lock:
            cached = self._templates.get(fingerprint)
            if cached is not None:
                return cached
            # it noted this run's use of the template before letting go of the template's lock
            template = self._ensure_template(fingerprint, migrations, seed, rebuild=rebuild, environment=environment)
            self._templates[fingerprint] = template
        return template

    # -- drops --

    def _schedule_drop(self, name: str) -> None:
        if not name.startswith(PREFIX):
            raise self._refusal(name, f"its name does not start with {PREFIX!r}")
        if self._closed:
            log.warning("dbscope backend already closed; %s is left for the next run's sweep", name)
            return
        self._janitor.drop(name)

    def wait_for_drops(self, timeout: float | None = None) -> bool:
        """Block until scheduled drops are done (True), or ``timeout`` passed (False)."""
        return self._janitor.wait(self.close_timeout if timeout is None else timeout)

    def _sweep(self) -> None:
        """Drop (in the background) what dead runs left; never a live run's databases or templates."""
        try:
            items = self._plan_sweep()
        except self.driver_errors as exc:
            log.warning("dbscope: the start-up sweep failed: %s", mask_password(str(exc)))
            return
        for item in items:
            if item.action == "drop":
                log.info("dbscope: dropping %s (%s)", item.name, item.reason)
                self.counters["swept"] += 1
                self._janitor.drop(item.name)

    def _close_creators(self) -> None:
        while True:
            try:
                self._creators.get_nowait().close()
            except queue.Empty:
                return
            except self.driver_errors as exc:
                log.debug("closing a connection: %s", exc)

    # -- lifecycle --

    def _check_open(self) -> None:
        if self._closed:
            raise DbscopeError(f"the {self.what} backend of run {self.run_id} was closed; open a new one")

    def close(self) -> None:
        """Drop the baselines this run captured, wait (bounded) for pending drops, close every connection."""
        if self._closed:
            return
        for name in self._snapshots:
            self._janitor.drop(name)
        self._closed = True
        self._janitor.close(max(10.0, 2 * self.close_timeout))
        self._close_creators()
        with contextlib.suppress(Exception):
            self._close_admin()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
