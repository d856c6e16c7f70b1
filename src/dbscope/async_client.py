"""AsyncClient: the Client API as coroutines, for asyncio code and tests (pytest-asyncio, anyio).

An AsyncClient drives a :class:`~dbscope.Client`: every statement goes through that
client's own path (placeholders, translation for the backend, errors, result rows), run
in a worker thread so the event loop never waits on the database. There is one source of
truth for the SQL handling of both clients, and an AsyncClient keeps every promise of its
Client: the same lock serializes it with every thread that uses the client's connection
(under the ``rollback`` strategy its statements join the test's transaction), a client
closed by its scope's end raises :class:`~dbscope.ClientClosedError` naming the scope and
the test, and a failing statement shows the caller's ``await`` line.

The worker is one thread per AsyncClient, not a pool: a transaction holds the client's
lock from begin to end and a lock belongs to a thread, so every statement of a
transaction runs in the thread that began it. While one task has a transaction open,
the client's other tasks wait for it to end (as other threads wait for a Client's
transaction); the statements of the task that opened it run inside it.

It needs an asyncio event loop: pytest-asyncio, anyio's asyncio backend (its default),
or ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from .client import Args, Client, ResultSet, StatementLike, Transaction, _caller_location
from .errors import DbscopeError

__all__ = ["AsyncClient", "AsyncTransaction"]

T = TypeVar("T")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AsyncClient:
    """The :class:`~dbscope.Client` API as coroutines, over a Client of a scope.

    ``AsyncClient(scope.client())``, or the ``adb`` fixture. ``await adb.execute(sql,
    args)``, ``await adb.batch([...])``, ``async with adb.transaction() as tx``,
    ``await adb.close()``; ``stats()`` and ``closed`` are plain attributes, as on Client.
    Closing either client closes both.
    """

    def __init__(self, client: Client) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"AsyncClient drives a dbscope.Client, not {client!r}: pass scope.client()")
        self._client = client
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._tx_owner: asyncio.Task[Any] | None = None  # the task whose transaction is open
        self._tx_depth = 0
        self._tx_ended = asyncio.Event()
        client._after_close.append(self._stop_worker)

    # -- state ---------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The synchronous client this one drives (for code that is not async)."""
        return self._client

    @property
    def closed(self) -> bool:
        return self._client.closed

    @property
    def scope_id(self) -> str:
        return self._client.scope_id

    @property
    def test_name(self) -> str:
        return self._client.test_name

    def stats(self) -> dict[str, Any]:
        """The client's counters, as a plain dict (statements of both clients count)."""
        return self._client.stats()

    # -- statements ----------------------------------------------------------------

    async def execute(self, sql: str, args: Args = ()) -> ResultSet:
        """Run one statement with positional (``?``) or named (``:name``) arguments."""
        __tracebackhide__ = True  # pytest shows the caller's await line, not dbscope's frames
        self._client._check_open()
        await self._wait_turn()
        return await self._run(self._client.execute, sql, args)

    async def batch(self, statements: Iterable[StatementLike]) -> list[ResultSet]:
        """Run statements in one transaction: all of them take effect, or none does."""
        __tracebackhide__ = True
        items = list(statements)  # a generator is read here, in the caller's task, not in the worker
        self._client._check_open()
        await self._wait_turn()
        return await self._run(self._client.batch, items)

    def transaction(self) -> AsyncTransaction:
        """A transaction: ``async with adb.transaction() as tx``, or ``tx = await adb.transaction()``."""
        __tracebackhide__ = True
        self._client._check_open()
        return AsyncTransaction(self)

    async def connect(self) -> Any:
        """A new DB-API connection to the same database, closed when the scope ends."""
        __tracebackhide__ = True
        self._client._check_open()
        return await self._run(self._client.connect)

    async def health_check(self) -> bool:
        """True when the client is open and its database answers ``SELECT 1``."""
        if self.closed:
            return False
        try:
            return bool((await self.execute("SELECT 1")).scalar() == 1)
        except Exception:
            return False

    async def close(self, timeout: float | None = None) -> bool:
        """Close the client and every connection it opened; True if all closed cleanly.

        As :meth:`Client.close`: waits at most ``timeout`` seconds for a running
        statement, then interrupts it. A second close is a no-op.
        """
        if self.closed:
            return True
        reason = f"at {_caller_location()}"  # here, where the caller's await is on the stack
        if self._tx_owner is not None:
            # a transaction holds the lock in the worker: close there, as Client.close in its thread
            return await self._run(self._client.close, timeout, reason=reason)
        # elsewhere, so that a statement still running in the worker can be waited for and interrupted
        return await asyncio.to_thread(self._client.close, timeout, reason=reason)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncClient scope={self.scope_id} {self._client.state.value}>"

    # -- the worker ----------------------------------------------------------------

    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"dbscope-async-{self.scope_id or 'client'}"
                )
            return self._executor

    def _stop_worker(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)  # statements already queued still run and fail closed

    def _submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run ``fn`` in the worker, in a copy of the caller's context; an asyncio future of its result."""
        __tracebackhide__ = True
        loop = _running_loop()
        context = contextvars.copy_context()
        try:
            future = self._worker().submit(context.run, fn, *args, **kwargs)
        except RuntimeError:  # the worker stopped: the client was closed meanwhile
            self._client._check_open()
            raise
        return asyncio.wrap_future(future, loop=loop)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        __tracebackhide__ = True
        return await _shown_from_here(self._submit(fn, *args, **kwargs))

    # -- transactions across tasks -------------------------------------------------

    async def _wait_turn(self) -> None:
        """Wait while another task of this client has a transaction open."""
        __tracebackhide__ = True
        _running_loop()
        task = asyncio.current_task()
        while self._tx_owner is not None and self._tx_owner is not task:
            await self._tx_ended.wait()

    def _claim(self) -> None:
        if self._tx_depth == 0:
            self._tx_owner = asyncio.current_task()
            self._tx_ended = asyncio.Event()
        self._tx_depth += 1

    def _release(self) -> None:
        self._tx_depth -= 1
        if self._tx_depth == 0:
            self._tx_owner = None
            self._tx_ended.set()


class AsyncTransaction:
    """A :class:`~dbscope.Transaction` driven from a task: a savepoint when nested or under rollback.

    Begun by ``async with`` or ``await``; commits on success and rolls back on error
    as a Client's transaction does. End it in the task that began it.
    """

    def __init__(self, adb: AsyncClient) -> None:
        self._adb = adb
        self._tx: Transaction | None = None
        self._claimed = False
        self._cancelled = False

    @property
    def active(self) -> bool:
        return self._tx is not None and self._tx.active

    async def _begin(self) -> Self:
        __tracebackhide__ = True
        if self._tx is not None:
            return self
        adb = self._adb
        await adb._wait_turn()
        adb._claim()
        self._claimed = True
        begun = adb._submit(Transaction, adb._client)
        begun.add_done_callback(self._began)
        try:
            self._tx = await _shown_from_here(asyncio.shield(begun))
        except asyncio.CancelledError:
            self._cancelled = True  # _began rolls it back once it has begun
            raise
        return self

    def _began(self, begun: asyncio.Future[Transaction]) -> None:
        if begun.cancelled() or begun.exception() is not None:
            self._settle()
        elif self._cancelled:  # the task that began it is gone: nobody will end it
            self._tx = begun.result()
            self._adb._submit(self._tx.rollback).add_done_callback(lambda _: self._settle())

    def _settle(self) -> None:
        """Give the client back to its other tasks once this transaction has ended."""
        if self._claimed and not self.active:
            self._claimed = False
            self._adb._release()

    def _check_begun(self) -> Transaction:
        __tracebackhide__ = True
        if self._tx is None:
            raise DbscopeError(
                "this transaction has not begun: use `async with adb.transaction() as tx` "
                "or `tx = await adb.transaction()`"
            )
        return self._tx

    def __await__(self) -> Generator[Any, None, Self]:
        return self._begin().__await__()

    async def execute(self, sql: str, args: Args = ()) -> ResultSet:
        __tracebackhide__ = True
        tx = self._check_begun()
        self._adb._client._check_open()
        return await self._adb._run(tx.execute, sql, args)

    async def commit(self) -> None:
        __tracebackhide__ = True
        await self._end(self._check_begun().commit)

    async def rollback(self) -> None:
        __tracebackhide__ = True
        tx = self._check_begun()
        if tx.active:
            await self._end(tx.rollback)

    async def _end(self, method: Callable[[], None]) -> None:
        __tracebackhide__ = True
        ended = self._adb._submit(method)
        ended.add_done_callback(lambda _: self._settle())
        await _shown_from_here(asyncio.shield(ended))  # cancelled or not, the end runs to completion

    async def __aenter__(self) -> Self:
        __tracebackhide__ = True
        return await self._begin()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        __tracebackhide__ = True
        if not self.active:
            self._settle()
            return
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()

    def __repr__(self) -> str:
        state = "not begun" if self._tx is None else repr(self._tx)
        return f"<AsyncTransaction {state}>"


def _running_loop() -> asyncio.AbstractEventLoop:
    __tracebackhide__ = True
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise DbscopeError(
            "AsyncClient needs a running asyncio event loop (pytest-asyncio, anyio's asyncio backend, "
            "or asyncio.run); from synchronous code use its client: adb.client.execute(...)"
        ) from None


async def _shown_from_here(future: asyncio.Future[T]) -> T:
    """Await a worker's result; its error is raised with dbscope's frames only (pytest hides them)."""
    __tracebackhide__ = True
    try:
        return await future
    except Exception as exc:
        # the worker's frames (concurrent.futures, asyncio) say nothing to a user: keep dbscope's,
        # which pytest hides, so a failing statement shows the caller's await line
        exc.__traceback__ = _dbscope_frames(exc.__traceback__)
        raise


def _dbscope_frames(tb: TracebackType | None) -> TracebackType | None:
    frames: list[TracebackType] = []
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR):
            frames.append(tb)
        tb = tb.tb_next
    head: TracebackType | None = None
    for frame in reversed(frames):
        head = TracebackType(head, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return head
