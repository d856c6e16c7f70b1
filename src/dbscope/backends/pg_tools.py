"""The backend type of a PostgreSQL server (``postgresql://``): opening, ``dbscope gc``, ``dbscope doctor``.

Importing this module imports psycopg: the registry loads it only for a PostgreSQL URL.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from ..errors import DbscopeError
from . import postgresql
from .base import Backend, Checkup, GarbageList, GarbageRequest, SharedServer
from .hostfs import MEMORY_FILESYSTEMS, filesystem_type
from .pg_connect import connect, server_address
from .servers import garbage_options, templates_note

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL

__all__ = ["SERVER", "compare_clone_strategies", "data_directory"]

#: A clone slower than this on a server is worth advice.
SLOW_CLONE_MS = 50.0
#: Why a disk slows clones down (benchmarks/bench_pg_clone.py compares tmpfs with a disk-backed server).
DISK_CLONE_COST = "each clone copies a file or more for every table and index, and each drop removes them"


#: Clones of each ``CREATE DATABASE ... STRATEGY`` that ``dbscope doctor`` times on a server, interleaved.
STRATEGY_ROUNDS = 5
#: The other strategy is advised when its median clone takes less than this share of the chosen one's.
STRATEGY_ADVICE_RATIO = 0.8


def compare_clone_strategies(backend: Any, rounds: int = STRATEGY_ROUNDS) -> dict[str, float]:
    """Median milliseconds of a clone with each strategy on this server, interleaved ({} before PostgreSQL 15).

    Clones the backend's template ``rounds`` times with ``FILE_COPY`` and with ``WAL_LOG``,
    alternating which goes first, and drops each clone (in the background, as tests do).
    The backend's own strategy is left as it was.
    """
    template = next(iter(backend._templates.values()), None)
    if template is None or backend.server_version < 150000:
        return {}
    chosen = backend.strategy
    times: dict[str, list[float]] = {strategy: [] for strategy in postgresql._STRATEGIES}
    try:
        for i in range(rounds):
            order = postgresql._STRATEGIES if i % 2 == 0 else postgresql._STRATEGIES[::-1]
            for strategy in order:
                backend.strategy = strategy
                started = time.perf_counter()
                database = backend.create(template, label=f"doctor_{strategy.lower()}_{i}")
                times[strategy].append((time.perf_counter() - started) * 1000)
                database.release()
                database.drop()
    finally:
        backend.strategy = chosen
    return {strategy: statistics.median(values) for strategy, values in times.items()}


def data_directory(url: BackendURL) -> str | None:
    """The server's data directory when it can be asked (superuser or pg_read_all_settings), else None."""
    address = server_address(url)
    try:
        with connect(address, address.maintenance_db, application_name="dbscope doctor") as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except (DbscopeError, psycopg.Error, OSError):  # not allowed, or gone meanwhile: no advice, no failure
        return None
    return str(row[0]) if row else None


class _ServerType:
    """``postgresql://user@host:port/db``: a database per scope on a server someone else runs."""

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
        return postgresql.PostgreSQLBackend(url, run_id=run_id, config=config)

    @property
    def shares_server(self) -> bool:
        return False  # the server is there already, for every worker

    def start_shared_server(self, url: BackendURL, *, config: Config) -> SharedServer | None:
        return None

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        options = garbage_options(request, allow_remote=config.allow_remote)
        return GarbageList(postgresql.collect_garbage(url, **options))

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        return templates_note(checkup, fingerprint)

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        directory = data_directory(url)
        fs = filesystem_type(directory) if directory else None
        if fs and fs not in MEMORY_FILESYSTEMS:
            checkup.advise(
                f"the server's data directory ({directory}) is on {fs}, not in memory: PostgreSQL clones there "
                f"get slower under sustained create/drop ({DISK_CLONE_COST}); "
                "use postgresql+proc:// (a throwaway cluster on tmpfs) or move the test server's data to tmpfs"
            )
        elif clone_ms > SLOW_CLONE_MS:
            checkup.advise(
                f"a PostgreSQL clone takes {clone_ms:.0f} ms: if the server's data is on a disk such as ext4, "
                f"clones get slower under sustained use ({DISK_CLONE_COST}); "
                "use postgresql+proc:// (a cluster on tmpfs, fsync off)"
            )
        figures = compare_clone_strategies(backend)
        if figures:
            chosen = getattr(backend, "strategy", postgresql.DEFAULT_CLONE_STRATEGY)
            (other,) = (strategy for strategy in figures if strategy != chosen)
            checkup.ok(
                "clone strategy",
                f"{chosen} {figures[chosen]:.1f} ms, {other} {figures[other]:.1f} ms (median of {STRATEGY_ROUNDS} "
                f"clones each, interleaved): dbscope uses {chosen}",
            )
            if figures[other] < STRATEGY_ADVICE_RATIO * figures[chosen]:
                checkup.advise(
                    f"on this server {other} clones faster than {chosen} ({figures[other]:.1f} ms against "
                    f"{figures[chosen]:.1f} ms): set {postgresql.CLONE_STRATEGY_ENV}={other.lower()}"
                )


SERVER = _ServerType()
