"""Whatever order they run in, each test starts on empty tables: the last one's commits are gone."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import service

from .factories import BookFactory


@pytest.mark.parametrize("n", range(4))
async def test_each_test_starts_empty_and_commits(n: int, adb: Any) -> None:
    assert await service.author_count() == 0
    assert await service.copies_on_shelf() == 0
    await service.add_author(f"committed by test {n}")  # through the app
    BookFactory()  # through db_session
    await adb.execute("INSERT INTO authors (name) VALUES (?)", [f"inserted by test {n}"])  # through adb
    assert await service.author_count() == 3
