"""The app's engine and sessions, built once at import from ``DATABASE_URL`` as apps do.

``DATABASE_URL`` is an async SQLAlchemy URL: ``postgresql+asyncpg://...`` in production,
``sqlite+aiosqlite:///catalog.db`` for a local run.
"""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///catalog.db"))
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
