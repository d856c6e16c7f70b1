"""The backend type of a MariaDB/MySQL server (``mysql://``, ``mariadb://``): opening, gc, doctor.

Importing this module imports PyMySQL: the registry loads it only for a MariaDB/MySQL URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pymysql

from ..errors import DbscopeError
from . import mariadb
from .base import Backend, Checkup, GarbageList, GarbageRequest, SharedServer
from .hostfs import MEMORY_FILESYSTEMS, filesystem_type
from .mariadb_connect import connect, server_address
from .mariadb_schema import rows
from .servers import garbage_options, templates_note

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL

__all__ = ["SERVER", "data_directory"]

#: A clone slower than this on a server is worth advice.
SLOW_CLONE_MS = 50.0


def data_directory(url: BackendURL) -> str | None:
    """The server's data directory (``@@datadir``), or None when it cannot be asked."""
    address = server_address(url)
    try:
        conn = connect(address, address.database)
    except DbscopeError:
        return None
    try:
        return str(rows(conn, "SELECT @@datadir")[0][0])
    except pymysql.Error:
        return None
    finally:
        conn.close()


class _ServerType:
    """``mysql://user@host:port/``: a database per scope on a server someone else runs."""

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (pymysql.Error,)

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
        return mariadb.MariaDBBackend(url, run_id=run_id, config=config)

    @property
    def shares_server(self) -> bool:
        return False  # the server is there already, for every worker

    def start_shared_server(self, url: BackendURL, *, config: Config) -> SharedServer | None:
        return None

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        return GarbageList(mariadb.collect_garbage(url, **garbage_options(request, allow_remote=config.allow_remote)))

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        return templates_note(checkup, fingerprint)

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        directory = data_directory(url)
        fs = filesystem_type(directory) if directory else None
        if clone_ms > SLOW_CLONE_MS and fs and fs not in MEMORY_FILESYSTEMS:
            checkup.advise(
                f"a MariaDB/MySQL clone takes {clone_ms:.0f} ms and the server's data directory ({directory}) is on "
                f"{fs}: a server whose data directory is on tmpfs clones several times faster; the reset and "
                "rollback strategies (one database per worker) avoid the clone altogether"
            )


SERVER = _ServerType()
