"""Every error dbscope raises.

Each message names the thing that failed, the value involved and what to do next.

    DbscopeError
     ├── ConfigError              a setting has a bad value (names the setting and its source)
     ├── MigrationError           a migration or seed failed (names the file and statement)
     ├── BackendUnavailableError  the database server or driver cannot be used
     ├── ClientClosedError        a client was used after its scope ended
     ├── ScopeError               an unknown or already destroyed scope was used
     ├── CleanupError             cleanup finished but something could not be closed or dropped
     ├── IsolationError           a test broke the isolation of the next one (names the test)
     ├── UsageError               the ``dbscope`` command's arguments, or a file named there, cannot be used
     └── ReportError              a report or baseline file cannot be read, or is not what dbscope wrote

The first seven are part of the public API (``from dbscope import ConfigError``); the
last two belong to the ``dbscope`` command.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "CleanupError",
    "ClientClosedError",
    "ConfigEditError",
    "ConfigError",
    "DbscopeError",
    "IsolationError",
    "JoinUnsupportedError",
    "MigrationError",
    "ReportError",
    "ScopeError",
    "UsageError",
]


class DbscopeError(Exception):
    """Base class of every error dbscope raises."""

    __module__ = "dbscope"


class ConfigError(DbscopeError, ValueError):
    """A setting has a value dbscope cannot use."""

    __module__ = "dbscope"


class MigrationError(DbscopeError):
    """A migration or seed step failed while building the template database.

    ``source`` names the file or callable; for a statement of a ``.sql`` file,
    ``statement`` is its text, ``statement_index`` its number in the file (from 1) and
    ``line`` the file's line of the error (the statement's first line when the driver
    does not say where in the statement it is).
    """

    __module__ = "dbscope"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        statement: str | None = None,
        statement_index: int | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.statement = statement
        self.statement_index = statement_index
        self.line = line


class BackendUnavailableError(DbscopeError):
    """The database backend (server, driver or executable) cannot be used."""

    __module__ = "dbscope"


class ClientClosedError(DbscopeError):
    """A client, transaction or connection was used after it was closed."""

    __module__ = "dbscope"


class ScopeError(DbscopeError, LookupError):
    """A scope id is unknown, or the scope is no longer active."""

    __module__ = "dbscope"


class CleanupError(DbscopeError):
    """Cleanup ran to the end but some resources could not be released."""

    __module__ = "dbscope"


class IsolationError(DbscopeError):
    """A test left something its strategy cannot undo (a transaction, a schema change)."""

    __module__ = "dbscope"


class JoinUnsupportedError(DbscopeError):
    """A connection cannot join the test's transaction on this backend; says what to use instead."""

    __module__ = "dbscope"


class UsageError(DbscopeError):
    """The ``dbscope`` command line, or a file named on it, cannot be used (exit status 2)."""


class ReportError(DbscopeError):
    """A report or baseline file cannot be read, or is not what dbscope wrote."""


class ConfigEditError(DbscopeError):
    """``dbscope init`` cannot edit a config file line by line (its layout, or what an edit would change)."""
