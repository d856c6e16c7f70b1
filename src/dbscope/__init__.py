"""dbscope: a fresh, fully migrated, isolated database for every test.

from dbscope import IsolationManager
with IsolationManager("sqlite://", migrations="migrations/") as manager:
    with manager.scope("checkout works") as scope:
        scope.client().execute("SELECT 1")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .async_client import AsyncClient, AsyncTransaction
from .client import Client, ResultSet, Row, Transaction
from .config import Config, EnvVarSpec
from .errors import (
    BackendUnavailableError,
    CleanupError,
    ClientClosedError,
    ConfigError,
    DbscopeError,
    IsolationError,
    JoinUnsupportedError,
    MigrationError,
    ScopeError,
)
from .manager import IsolationManager
from .scope import Scope

__all__ = [
    "AsyncClient",
    "AsyncTransaction",
    "BackendUnavailableError",
    "CleanupError",
    "Client",
    "ClientClosedError",
    "Config",
    "ConfigError",
    "DbscopeError",
    "EnvVarSpec",
    "IsolationError",
    "IsolationManager",
    "JoinUnsupportedError",
    "MigrationError",
    "ResultSet",
    "Row",
    "Scope",
    "ScopeError",
    "Transaction",
    "__version__",
]

try:
    # the version is written once, in pyproject.toml; the installed metadata carries it here
    __version__ = version("dbscope")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
