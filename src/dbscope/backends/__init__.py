"""Backends: where a scope's database lives, chosen by the URL's scheme in the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, BackendType, Database, Template

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL

__all__ = ["Backend", "BackendType", "Database", "Template", "open_backend"]


def open_backend(url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
    """The backend for ``url``, from its registry entry; drivers of other backends are never imported."""
    return url.backend_type().open(url, run_id=run_id, config=config)
