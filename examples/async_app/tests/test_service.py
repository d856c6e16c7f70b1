"""The service commits, rolls back and refuses duplicates; the test sees all of it, and only it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from catalog import service
from catalog.models import Author, Book

from .factories import AuthorFactory, BookFactory


async def test_the_app_commits_an_author(adb: Any) -> None:
    await service.add_author("Ursula K. Le Guin")
    rows = await adb.execute("SELECT name FROM authors")
    assert [tuple(r) for r in rows.rows] == [("Ursula K. Le Guin",)]


async def test_a_duplicate_author_is_refused_by_the_unique_constraint() -> None:
    await service.add_author("Octavia E. Butler")
    with pytest.raises(service.AuthorExists):
        await service.add_author("Octavia E. Butler")
    assert await service.author_count() == 1


async def test_the_app_keeps_working_after_a_unique_violation(db: Any) -> None:
    await service.add_author("Iain M. Banks")
    with pytest.raises(service.AuthorExists):
        await service.add_author("Iain M. Banks")
    await service.add_author("Ann Leckie")  # the failed insert was rolled back to its savepoint only
    assert db.execute("SELECT count(*) FROM authors").scalar() == 2


async def test_an_import_is_all_or_nothing(db: Any) -> None:
    with pytest.raises(service.DuplicateTitle):
        await service.import_author("Stanisław Lem", ["Solaris", "The Cyberiad", "Solaris"])
    assert db.execute("SELECT count(*) FROM authors").scalar() == 0
    assert db.execute("SELECT count(*) FROM books").scalar() == 0


async def test_an_import_commits_every_book() -> None:
    await service.import_author("Stanisław Lem", ["Solaris", "The Cyberiad"])
    assert [b["title"] for b in await service.books()] == ["Solaris", "The Cyberiad"]


async def test_borrowing_takes_a_copy_off_the_shelf() -> None:
    book = BookFactory(copies=2)
    assert await service.borrow(book.id) == 1
    assert await service.copies_on_shelf() == 1


async def test_the_last_copy_then_the_app_rolls_back(db: Any) -> None:
    book = BookFactory(copies=1)
    assert await service.borrow(book.id) == 0
    with pytest.raises(service.OutOfCopies):  # it sent copies = -1, then rolled its session back
        await service.borrow(book.id)
    assert db.execute("SELECT copies FROM books WHERE id = ?", [book.id]).scalar() == 0


async def test_the_app_sees_what_the_factory_made() -> None:
    BookFactory.create_batch(3, author=AuthorFactory(name="N. K. Jemisin"))
    assert {b["author"] for b in await service.books()} == {"N. K. Jemisin"}
    assert await service.copies_on_shelf() == 6


async def test_the_test_session_sees_what_the_app_committed(db_session: Any) -> None:
    author_id = await service.add_author("Ted Chiang")
    await service.add_book(author_id, "Exhalation", copies=3)
    title = db_session.execute(select(Book.title).where(Book.author_id == author_id)).scalar_one()
    assert title == "Exhalation"


async def test_tasks_commit_side_by_side() -> None:
    names = [f"Writer {i}" for i in range(6)]
    await asyncio.gather(*(service.add_author(name) for name in names))
    assert await service.author_count() == 6


async def test_db_async_session_is_joined_too(db_async_session: Any) -> None:
    await service.add_author("Becky Chambers")
    found = await db_async_session.execute(select(Author.name))
    assert found.scalars().all() == ["Becky Chambers"]
