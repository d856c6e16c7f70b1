"""A server run's background thread: it drops databases, beats the run's heartbeat and holds its lock.

Every server backend (PostgreSQL, MariaDB) ends each scope by handing its database's
name to the janitor, so the test never waits for a drop, and keeps its run alive on the
server through it: the janitor's connection holds the run's lock (an advisory lock, a
named lock) and writes a heartbeat every few seconds, which is how other runs' sweeps
and ``dbscope gc`` know the run still lives. What differs by server is said by a
:class:`RunSession` (how to connect and register, beat, drop, unregister); the thread,
the queue, the retries and the waits are here, once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from typing import Any, Protocol

from ..errors import BackendUnavailableError, DbscopeError
from ..urls import mask_password

__all__ = ["CLOSE_WAIT_CAP_S", "DROP_RETRY_S", "Janitor", "RunSession"]

log = logging.getLogger("dbscope.database")

#: Pauses before a drop is tried again after losing the server (a restart takes a moment to
#: accept connections); 6.85 s in all, within the wait of ``backend.close()``.
DROP_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0)
#: The longest ``close()`` waits for drops that are still finishing one by one.
CLOSE_WAIT_CAP_S = 120.0


class RunSession(Protocol):
    """What a server says to its janitor; ``Any`` is the driver's connection."""

    #: The driver's errors (logged, never raised out of the thread) and those worth a retry
    #: (the server restarted); a drop that raises ``gone`` found the database dropped already.
    errors: tuple[type[BaseException], ...]
    transient: tuple[type[BaseException], ...]
    gone: tuple[type[BaseException], ...]

    def open(self) -> Any:
        """A new connection, with the run registered and its lock held."""
        ...

    def usable(self, conn: Any) -> bool: ...

    def heartbeat(self, conn: Any, run: str) -> None: ...

    def unregister(self, conn: Any, run: str) -> None: ...

    def drop(self, conn: Any, name: str) -> bool:
        """Drop ``name`` if dbscope owns it; whether it was dropped."""
        ...


class Janitor:
    """One run's background thread on a server; see the module docstring."""

    _BEAT = object()

    def __init__(self, session: RunSession, run: str, *, interval: float) -> None:
        self._session = session
        self._run_id = run
        self._interval = interval
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self.counters: Counter[str] = Counter()
        self.drop_ms: list[float] = []
        self._conn = session.open()
        self._thread = threading.Thread(target=self._run, name=f"dbscope-janitor-{run}", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        with self._cond:
            self._pending.add(name)
        self._queue.put(name)

    @property
    def pending(self) -> list[str]:
        with self._cond:
            return sorted(self._pending)

    def wait(self, timeout: float, *, below: int = 1) -> bool:
        """Wait until fewer than ``below`` drops are pending (default: none); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._pending) >= below:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float) -> bool:
        """Finish the pending drops, then stop; False if some are left for the next run's sweep.

        Waits as long as drops keep finishing: many scopes ending together (50 at once on a
        busy server, 0.2-1 s a drop) would outlast any fixed wait and leave their databases
        behind. Gives up after ``timeout`` s without a drop finishing (a server that hangs),
        and after ``CLOSE_WAIT_CAP_S`` in all.
        """
        self._queue.put(None)
        deadline = time.monotonic() + max(timeout, CLOSE_WAIT_CAP_S)
        while True:
            finished = len(self.drop_ms)  # one entry per drop done, dropped or failed
            self._thread.join(min(timeout, max(0.0, deadline - time.monotonic())))
            if not self._thread.is_alive():
                return True
            if len(self.drop_ms) == finished or time.monotonic() >= deadline:
                break
        log.warning(
            "dbscope: %d database drop(s) still pending at close: %s; the next run's sweep (or dbscope gc) drops them",
            len(self._pending),
            ", ".join(self.pending),
        )
        return False

    def _connection(self) -> Any:
        if not self._session.usable(self._conn):
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._session.open()  # the run's lock went with the old connection
        return self._conn

    def _run(self) -> None:
        next_beat = time.monotonic() + self._interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                item = self._BEAT
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self._interval
            if item is None:
                break
            if isinstance(item, str):
                self._drop(item)
        try:
            self._session.unregister(self._connection(), self._run_id)
        except self._session.errors + (DbscopeError,) as exc:
            log.debug("could not unregister run %s: %s", self._run_id, exc)
        with contextlib.suppress(Exception):
            self._conn.close()

    def _beat(self) -> None:
        try:
            self._session.heartbeat(self._connection(), self._run_id)
        except self._session.errors + (DbscopeError,) as exc:  # the next beat tries again, reconnecting if needed
            log.warning("dbscope heartbeat of run %s failed: %s", self._run_id, mask_password(str(exc)))

    def _drop(self, name: str) -> None:
        started = time.perf_counter()
        retries = iter(DROP_RETRY_S)
        try:
            while True:
                # a restart cuts the session, then refuses connections for a moment: try again
                failure: BaseException
                try:
                    conn = self._connection()
                except BackendUnavailableError as exc:
                    failure = exc
                else:
                    try:
                        if self._session.drop(conn, name):
                            self.counters["dropped"] += 1
                        break
                    except self._session.gone:
                        break  # dropped by someone else (a concurrent sweep) meanwhile
                    except self._session.transient as exc:
                        failure = exc
                delay = next(retries, None)
                if delay is None:
                    raise failure
                self.counters["drop_retries"] += 1
                log.debug("dropping %s failed (%s); again in %.2f s", name, mask_password(str(failure)), delay)
                time.sleep(delay)
        except self._session.errors + (DbscopeError,) as exc:
            self.counters["drop_failures"] += 1
            log.warning("dbscope could not drop %s: %s", name, mask_password(str(exc)))
        finally:
            self.drop_ms.append((time.perf_counter() - started) * 1000)
            with self._cond:
                self._pending.discard(name)
                self._cond.notify_all()
