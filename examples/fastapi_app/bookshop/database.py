"""The engine and the session factory, built once at import from ``DATABASE_URL``.

Nothing here knows about tests: under dbscope's ``rollback`` strategy the settings
``dbscope_app_engines`` and ``dbscope_app_sessions`` name ``engine`` and ``SessionLocal``,
and dbscope points them at the test's transaction for the length of each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine(os.environ["DATABASE_URL"])
SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request, closed after the response."""
    with SessionLocal() as session:
        yield session
