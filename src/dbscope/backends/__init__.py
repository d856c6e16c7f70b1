"""Backends: where a scope's database lives. Chosen by the URL's scheme."""

from __future__ import annotations

from typing import Any

from ..urls import BackendURL
from .base import Backend, Database, Template

__all__ = ["Backend", "Database", "Template", "open_backend"]


def open_backend(url: BackendURL, *, run_id: str, **options: Any) -> Backend:
    """The backend for ``url``; drivers of other backends are never imported."""
    if url.family == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(directory=url.path, in_memory=url.kind == "memory", run_id=run_id)
    from ..errors import BackendUnavailableError

    raise BackendUnavailableError(
        f"the {url.family} backend ({url.masked}) is not available in this version of dbscope; "
        "use sqlite:// or sqlite:///some/dir"
    )
