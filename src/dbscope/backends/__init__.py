"""Backends: where a scope's database lives. Chosen by the URL's scheme."""

from __future__ import annotations

import importlib.util
from typing import Any, cast

from ..urls import BackendURL
from .base import Backend, Database, Template

__all__ = ["Backend", "Database", "Template", "open_backend"]


def open_backend(url: BackendURL, *, run_id: str, **options: Any) -> Backend:
    """The backend for ``url``; drivers of other backends are never imported."""
    if url.family == "sqlite":
        from .sqlite import SQLiteBackend

        # cast: SQLiteMemoryDatabase.dialect is typed as the class, the Protocol wants Dialect
        return cast("Backend", SQLiteBackend(directory=url.path, in_memory=url.kind == "memory", run_id=run_id))
    from ..errors import BackendUnavailableError

    if url.family == "postgresql":
        try:
            import psycopg  # noqa: F401  (only now: other backends never import it)
        except ImportError as exc:
            missing = isinstance(exc, ModuleNotFoundError) and exc.name == "psycopg"
            raise BackendUnavailableError(
                f"the PostgreSQL backend ({url.masked}) needs psycopg 3, which "
                + ("is not installed" if missing else f"cannot be imported ({exc})")
                + ": pip install 'dbscope[postgres]'"
            ) from exc
        if url.kind == "proc":
            if importlib.util.find_spec(f"{__name__}.pg_cluster") is None:
                raise BackendUnavailableError(
                    f"{url.masked}: throwaway PostgreSQL clusters (postgresql+proc://) are not available in this "
                    "version of dbscope; start a server and use postgresql://user@localhost:5432/postgres"
                )
            from .pg_cluster import open_cluster_backend  # starts the cluster; closing the backend stops it

            return open_cluster_backend(url, run_id=run_id, config=options.get("config"))
        from .postgresql import PostgreSQLBackend

        return PostgreSQLBackend(url, run_id=run_id, config=options.get("config"))
    raise BackendUnavailableError(
        f"the {url.family} backend ({url.masked}) is not available in this version of dbscope; "
        "use sqlite://, sqlite:///some/dir or postgresql://user@host:port/db"
    )
