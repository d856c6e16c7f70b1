from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from catalog.web import app

from .factories import AuthorFactory, BookFactory


@pytest.fixture(autouse=True)
def factories(db_session: Any) -> Iterator[None]:
    """The factories write through ``db_session``: joined to the test's transaction, as the app is."""
    for factory in (AuthorFactory, BookFactory):
        factory._meta.sqlalchemy_session = db_session
    yield
    for factory in (AuthorFactory, BookFactory):
        factory._meta.sqlalchemy_session = None


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog") as http:
        yield http
