"""The small interface every backend implements.

A backend builds a template database from migrations once, clones it into one
database per scope, and drops those databases again. SQLite is the reference
implementation; PostgreSQL implements the same protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..migrations import MigrationSet

__all__ = ["Backend", "Database", "Dialect", "Template"]


class Dialect(Protocol):
    """What the client needs to know about the SQL of a backend."""

    name: str

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        """Adapt ``?``/``:name`` placeholders to the driver's paramstyle."""
        ...

    def begin(self) -> str: ...


class Template(Protocol):
    """A migrated template, keyed by the fingerprint of its migrations and seed."""

    fingerprint: str


class Database(Protocol):
    """One scope's database, created from a template."""

    name: str
    dialect: Dialect

    def url(self, fmt: str = "sqlalchemy") -> str:
        """The database's URL as ``sqlalchemy`` URL, ``async`` URL or plain ``dsn``."""
        ...

    def connect(self, *, autocommit: bool = False) -> Any:
        """A new DB-API connection to this database."""
        ...

    def primary_connection(self) -> Any:
        """dbscope's own autocommit connection to this database, or None to open a new one."""
        ...

    def release(self) -> None:
        """Close what keeps the database alive on dbscope's side (not the database)."""
        ...

    def count_foreign_connections(self) -> int:
        """Connections to this database that dbscope did not open (call after release)."""
        ...

    def restore(self, template: Template) -> None:
        """Bring the contents back to the template's, in place (the reset strategy)."""
        ...

    def drop(self) -> None:
        """Remove the database. Never touches a database this backend did not create."""
        ...


class Backend(Protocol):
    """Builds templates and creates and drops the databases of scopes."""

    def template(self, migrations: MigrationSet, seed: MigrationSet, *, rebuild: bool = False) -> Template: ...

    def create(self, template: Template, *, label: str) -> Database: ...

    def close(self) -> None: ...
