"""The backend type of a PostgreSQL server (``postgresql://``): opening, ``dbscope gc``, ``dbscope doctor``.

Importing this module imports psycopg: the registry loads it only for a PostgreSQL URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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

__all__ = ["SERVER", "data_directory"]

#: A clone slower than this on a server is worth advice.
SLOW_CLONE_MS = 50.0
#: Why a disk slows clones down (benchmarks/bench_pg_clone.py compares tmpfs with a disk-backed server).
DISK_CLONE_COST = "each clone copies a file or more for every table and index, and each drop removes them"


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


SERVER = _ServerType()
