"""Every backend dbscope has, in one table: its URL schemes, its name in messages, where its code lives.

As httpx maps a URL to a transport, dbscope maps a URL's scheme to an entry of
:data:`BACKENDS`. An entry names its implementation as ``"module:attribute"``, a
:class:`~dbscope.backends.base.BackendType` imported only when that backend is used (so
psycopg is imported only for PostgreSQL), and every message that lists what dbscope
accepts (a bad URL, the ``dbscope_url`` help, ``dbscope --help``, a backend that is not
available) is written from this table.

A new backend is one module holding its ``BackendType`` and one line here.

This module imports no driver, and nothing of dbscope but its errors.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import BackendUnavailableError

if TYPE_CHECKING:
    from .base import BackendType

__all__ = ["BACKENDS", "BackendEntry", "by_scheme", "schemes", "usage"]


@dataclass(frozen=True)
class BackendEntry:
    """One backend: how its URLs look, what messages call it, where its code is."""

    #: URL schemes that choose this backend, lower case; the first is its own name
    schemes: tuple[str, ...]
    #: what messages call it: "SQLite in memory", "a PostgreSQL server"
    title: str
    #: a URL to show in messages and help texts
    example: str
    #: its :class:`~dbscope.backends.base.BackendType`, as ``"module:attribute"``
    implementation: str
    #: what follows ``scheme://``: an optional directory (``sqlite:///some/dir``), or
    #: ``user:password@host:port/database?options`` as for any server
    address: Literal["directory", "server"]
    #: ``memory``, ``file``, ``server`` or ``proc``: a label for people and logs (nothing branches on it)
    kind: str
    #: a URL of these schemes that names a directory belongs to the backend of this scheme
    #: (``sqlite:///some/dir`` is SQLite files, ``sqlite://`` SQLite in memory)
    with_directory: str | None = None
    #: the module of the driver it needs (imported before its implementation), its name in
    #: messages, and how to install it
    driver: str | None = None
    driver_title: str | None = None
    install: str | None = None

    @property
    def name(self) -> str:
        return self.schemes[0]

    def __reduce__(self) -> tuple[object, tuple[str]]:  # pickled by name: one entry per backend, also after a copy
        return (_entry_named, (self.name,))

    @property
    def family(self) -> str:
        """The database: ``sqlite`` or ``postgresql`` (a label; nothing branches on it)."""
        return self.name.partition("+")[0]

    @property
    def usage(self) -> str:
        """``sqlite:// (SQLite in memory)``: its example and what it is."""
        return f"{self.example} ({self.title})"

    def available(self) -> bool:
        """Whether this installation of dbscope has the backend's module (its driver aside)."""
        return importlib.util.find_spec(self.implementation.partition(":")[0]) is not None

    def load(self, url: str | None = None) -> BackendType:
        """The backend's implementation; a missing driver or module is a BackendUnavailableError.

        ``url`` (masked) names what asked for it in the message.
        """
        which = f"{self.title} ({url})" if url else self.title
        if self.driver is not None:
            try:
                importlib.import_module(self.driver)
            except ImportError as exc:
                missing = isinstance(exc, ModuleNotFoundError) and exc.name == self.driver
                raise BackendUnavailableError(
                    f"{which} needs {self.driver_title or self.driver}, which "
                    + ("is not installed" if missing else f"cannot be imported ({exc})")
                    + (f": {self.install}" if self.install else "")
                ) from exc
        module_name, _, attribute = self.implementation.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            others = [entry.usage for entry in BACKENDS if entry is not self and entry.available()]
            raise BackendUnavailableError(
                f"{which} is not available in this version of dbscope; use {_either(others)}"
            ) from exc
        implementation: BackendType = getattr(module, attribute)
        return implementation


_PSYCOPG = {
    "driver": "psycopg",
    "driver_title": "psycopg 3",
    "install": "pip install 'dbscope[postgres]' (or 'dbscope[postgres-binary]' on a machine without libpq)",
}

_PYMYSQL = {"driver": "pymysql", "driver_title": "PyMySQL", "install": "pip install 'dbscope[mysql]'"}

# fmt: off
BACKENDS: tuple[BackendEntry, ...] = (
    BackendEntry(("sqlite", "sqlite+memory"), "SQLite in memory", "sqlite://",
                 "dbscope.backends.sqlite_tools:MEMORY", "directory", "memory", with_directory="sqlite+file"),
    BackendEntry(("sqlite+file",), "SQLite files", "sqlite:///some/dir",
                 "dbscope.backends.sqlite_tools:FILES", "directory", "file"),
    BackendEntry(("postgresql", "postgres", "postgresql+psycopg"), "a PostgreSQL server", "postgresql://user@host:port/db",
                 "dbscope.backends.pg_tools:SERVER", "server", "server", **_PSYCOPG),
    BackendEntry(("postgresql+proc",), "a throwaway PostgreSQL cluster", "postgresql+proc://",
                 "dbscope.backends.pg_cluster:PROC", "server", "proc", **_PSYCOPG),
    BackendEntry(("mysql", "mariadb", "mysql+pymysql"), "a MariaDB/MySQL server", "mysql://user@host:port/",
                 "dbscope.backends.mariadb_tools:SERVER", "server", "server", **_PYMYSQL),
    BackendEntry(("mysql+proc", "mariadb+proc"), "a throwaway MariaDB server", "mysql+proc://",
                 "dbscope.backends.mariadb_proc:PROC", "server", "proc", **_PYMYSQL),
)
# fmt: on

_BY_SCHEME = {scheme: entry for entry in BACKENDS for scheme in entry.schemes}
if len(_BY_SCHEME) != sum(len(entry.schemes) for entry in BACKENDS):
    raise AssertionError("two backends claim the same URL scheme")


def by_scheme(scheme: str) -> BackendEntry | None:
    """The backend of a URL scheme (any case), or None."""
    return _BY_SCHEME.get(scheme.lower())


def _entry_named(name: str) -> BackendEntry:
    return _BY_SCHEME[name]


def schemes() -> list[str]:
    """Every scheme dbscope knows, sorted."""
    return sorted(_BY_SCHEME)


def usage(entries: tuple[BackendEntry, ...] = BACKENDS) -> str:
    """``sqlite:// (SQLite in memory), ... or postgresql+proc:// (a throwaway PostgreSQL cluster)``."""
    return _either([entry.usage for entry in entries])


def _either(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
