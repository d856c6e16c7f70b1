"""ClonePool: databases cloned ahead of need by a background thread.

A test then takes a ready database instead of waiting for the clone. For PostgreSQL and
MariaDB it hides the server's work (the thread only waits on a socket). A clone made in
this process (SQLite: a file copy and a connect) is different: the thread needs the GIL
between its system calls, and while the tests hold it (pytest's own code, the app's) each
of those waits costs the tests a forced switch, which measured more than the clone it
hides (benchmarks/bench_sqlite.py: 0.97 against 0.74 ms a test over 1000 tests that do
nothing). So such a pool is *adaptive*: it
clones ahead only while the thread that takes clones leaves it the time, that is, while
that thread's idle time between two takes (wall clock less its own CPU time: waiting on
I/O, a socket, a sleep) is at least twice what a clone costs; otherwise ``take()`` clones
synchronously. Anyone waiting for the pool (``wait_ready()``) has it fill all the same.
On a machine busy with other work, time the taker spends waiting for a CPU counts as
idle too, and the pool clones ahead as it did before it was adaptive.
When the pool is empty, ``take()`` clones synchronously, so a slow pool never blocks a
test for longer than cloning would.

At ``os.fork()`` the thread is paused outside any clone (so the child inherits no lock
it holds); the child forgets the parent's waiting clones (they stay the parent's: never
closed nor dropped there) and clones synchronously, with no thread of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .backends.base import release_and_drop

__all__ = ["ClonePool"]

log = logging.getLogger("dbscope.database")

#: the parent's clones a forked child inherited: referenced, so that the child's garbage
#: collector never closes their connections (they are the parent's to close and drop)
_INHERITED: list[Any] = []
_POOLS: weakref.WeakSet[ClonePool] = weakref.WeakSet()
#: an adaptive pool clones ahead while the taker's idle time between takes is this many clones
AHEAD_WHEN_IDLE = 2.0
#: weight of the newest sample in the running averages of idle time and clone cost
_NEWEST = 0.2


def _before_fork() -> None:
    for pool in list(_POOLS):
        pool._pause()


def _after_fork_in_parent() -> None:
    for pool in list(_POOLS):
        pool._resume()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class ClonePool:
    """Keeps up to ``size`` databases ready, made by ``create`` in a daemon thread."""

    def __init__(
        self, create: Callable[[], Any], *, size: int = 2, name: str = "dbscope-pool", adaptive: bool = False
    ) -> None:
        self._create = create
        self._size = size
        self._adaptive = adaptive
        #: running averages (seconds): the taker's idle time between takes, and a clone's cost;
        #: an adaptive pool starts idle and clones ahead once the two say it is worth it
        self._idle: float | None = None
        self._cost: float | None = None
        self._last_take: tuple[int, float, float] | None = None  # (thread, wall clock, its CPU time)
        self._waiters = 0
        self._ready: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.hits = 0
        self.misses = 0
        self.failure: BaseException | None = None
        self._name = name
        self._thread: threading.Thread | None = None
        self._busy = False  # the thread is making a clone (holding the backend's locks)
        self._paused = False  # a fork is under way
        _POOLS.add(self)
        if size > 0:
            self._thread = threading.Thread(target=self._fill, name=name, daemon=True)
            self._thread.start()

    @property
    def ready(self) -> int:
        """How many databases wait ready now (``size`` once the thread has caught up)."""
        with self._cond:
            return len(self._ready)

    def wait_ready(self, count: int | None = None, timeout: float = 10.0) -> bool:
        """Wait until ``count`` databases (default: ``size``) wait ready; False if not within ``timeout`` s.

        The pool fills while anyone waits, adaptive or not: the waiter leaves it the time.
        """
        wanted = self._size if count is None else min(count, self._size)
        with self._cond:
            self._waiters += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(lambda: self._closed or len(self._ready) >= wanted, timeout)
            finally:
                self._waiters -= 1
            return done and not self._closed

    def _ahead(self) -> bool:
        """Whether to clone ahead now (called holding the condition)."""
        if not self._adaptive or self._waiters:
            return True
        return self._cost is not None and self._idle is not None and self._idle >= AHEAD_WHEN_IDLE * self._cost

    def _note_cost(self, started: float) -> None:
        """What the clone begun at ``started`` (``perf_counter()``) cost, averaged."""
        if not self._adaptive:
            return
        seconds = time.perf_counter() - started
        with self._cond:
            self._cost = seconds if self._cost is None else self._cost + _NEWEST * (seconds - self._cost)

    def _note_take(self) -> None:
        """The taker's idle time since its last take (its wall clock less its CPU time), averaged."""
        if not self._adaptive:
            return
        me, wall, cpu = threading.get_ident(), time.perf_counter(), time.thread_time()
        last, self._last_take = self._last_take, (me, wall, cpu)
        if last is None or last[0] != me:  # CPU times of two threads do not subtract
            return
        idle = max(0.0, (wall - last[1]) - (cpu - last[2]))
        with self._cond:
            before = self._ahead()
            self._idle = idle if self._idle is None else self._idle + _NEWEST * (idle - self._idle)
            if self._ahead() and not before:  # the thread starts cloning ahead
                self._cond.notify_all()

    def take(self) -> Any:
        """A ready database if there is one, else a freshly cloned one."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the clone pool is closed")
            if self._ready:
                self.hits += 1
                database = self._ready.popleft()
            else:
                database = None
                self.misses += 1
            if self._ahead():  # the thread refills; woken for nothing, it would cost the taker the GIL
                self._cond.notify_all()
        if database is None:
            started = time.perf_counter()
            database = self._create()
            self._note_cost(started)
            self._revive()
        self._note_take()  # after the clone: the idle time measured is the test's
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
                while not self._closed and (self._paused or len(self._ready) >= self._size or not self._ahead()):
                    self._cond.wait()
                if self._closed:
                    return
                self._busy = True
            try:
                started = time.perf_counter()
                database = self._create()
                self._note_cost(started)
            except BaseException as exc:  # take() clones synchronously and raises it there
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
                self.failure = exc
                log.warning("clone pool stopped filling: %s", exc)
                return
            with self._cond:
                self._busy = False
                if not self._closed:
                    self._ready.append(database)
                self._cond.notify_all()
                if not self._closed:
                    continue
            release_and_drop(database, "dropping a clone the pool no longer needs")
            return

    def _pause(self, timeout: float = 10.0) -> None:
        """Before a fork: wait (bounded) until the thread is between clones, and keep it there."""
        with self._cond:
            self._paused = True
            self._cond.wait_for(lambda: not self._busy, timeout)

    def _resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def _forget_after_fork(self) -> None:
        """In a forked child: the waiting clones are the parent's; this pool clones synchronously."""
        _INHERITED.extend(self._ready)
        self._ready = deque()
        self._cond = threading.Condition()
        self._thread = None
        self._size = 0
        self._paused = self._busy = False
        self._waiters = 0
        self._last_take = None  # the parent's CPU clock: not this process's
        self.failure = None

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
