"""ClonePool: databases cloned ahead of need by a background thread.

A test then takes a ready database instead of waiting for the clone. For SQLite the
file copy and the connect release the GIL, so the thread works while pytest
runs the test; for PostgreSQL it hides ``CREATE DATABASE ... TEMPLATE``. When the pool
is empty, ``take()`` clones synchronously, so a slow pool never blocks a test for
longer than cloning would.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .backends.base import release_and_drop

__all__ = ["ClonePool"]

log = logging.getLogger("dbscope.database")


class ClonePool:
    """Keeps up to ``size`` databases ready, made by ``create`` in a daemon thread."""

    def __init__(self, create: Callable[[], Any], *, size: int = 2, name: str = "dbscope-pool") -> None:
        self._create = create
        self._size = size
        self._ready: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.hits = 0
        self.misses = 0
        self.failure: BaseException | None = None
        self._name = name
        self._thread: threading.Thread | None = None
        if size > 0:
            self._thread = threading.Thread(target=self._fill, name=name, daemon=True)
            self._thread.start()

    @property
    def ready(self) -> int:
        """How many databases wait ready now (``size`` once the thread has caught up)."""
        with self._cond:
            return len(self._ready)

    def take(self) -> Any:
        """A ready database if there is one, else a freshly cloned one."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the clone pool is closed")
            if self._ready:
                self.hits += 1
                database = self._ready.popleft()
                self._cond.notify()
                return database
            self.misses += 1
            self._cond.notify()
        database = self._create()
        self._revive()
        return database

    def _revive(self) -> None:
        """After the thread stopped on a failure (a server restarting), a clone that worked
        again means the cause is gone: start filling again instead of missing all session."""
        with self._cond:
            if self.failure is None or self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            log.warning("clone pool filling again (it stopped on: %s)", self.failure)
            self.failure = None
            self._thread = threading.Thread(target=self._fill, name=self._name, daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self._size:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                database = self._create()
            except BaseException as exc:  # take() clones synchronously and raises it there
                self.failure = exc
                log.warning("clone pool stopped filling: %s", exc)
                return
            with self._cond:
                if not self._closed:
                    self._ready.append(database)
                    continue
            release_and_drop(database, "dropping a clone the pool no longer needs")
            return

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and drop every database still waiting in the pool."""
        with self._cond:
            self._closed = True
            ready = list(self._ready)
            self._ready.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for database in ready:
            release_and_drop(database, "dropping a clone the pool no longer needs")

    def __len__(self) -> int:
        return len(self._ready)
