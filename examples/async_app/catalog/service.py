"""The catalogue's operations: each opens its own session and commits (or rolls back) itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from .db import SessionLocal, engine
from .models import Author, Book


class AuthorExists(Exception):
    """An author of that name is already in the catalogue."""


class DuplicateTitle(Exception):
    """An import named the same title twice (or one already there): nothing was imported."""


class OutOfCopies(Exception):
    """Every copy of the book is out on loan."""


class NoSuchBook(LookupError):
    pass


async def add_author(name: str) -> int:
    async with SessionLocal() as session:
        author = Author(name=name)
        session.add(author)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise AuthorExists(name) from None
        return author.id


async def add_book(author_id: int, title: str, copies: int = 1) -> int:
    async with SessionLocal() as session:
        book = Book(author_id=author_id, title=title, copies=copies)
        session.add(book)
        await session.commit()
        return book.id


async def import_author(name: str, titles: Sequence[str]) -> int:
    """An author and their books, all or nothing: one failing insert rolls back the lot."""
    async with SessionLocal() as session:
        try:
            async with session.begin():
                author = Author(name=name)
                session.add(author)
                await session.flush()
                for title in titles:
                    session.add(Book(author_id=author.id, title=title))
                    await session.flush()
        except IntegrityError:
            raise DuplicateTitle(f"importing {name!r} failed: nothing was imported") from None
        return author.id


async def borrow(book_id: int) -> int:
    """Lend one copy; the copies left. With none left, the app rolls its change back."""
    async with SessionLocal() as session:
        book = await session.get(Book, book_id)
        if book is None:
            raise NoSuchBook(book_id)
        book.copies -= 1
        await session.flush()  # the UPDATE is sent; below zero, the app takes it back
        if book.copies < 0:
            await session.rollback()
            raise OutOfCopies(book_id)
        await session.commit()
        return book.copies


async def books() -> list[dict[str, Any]]:
    async with SessionLocal() as session:
        rows = await session.execute(
            select(Book.id, Book.title, Book.copies, Author.name).join(Author).order_by(Author.name, Book.title)
        )
        return [{"id": i, "title": t, "copies": c, "author": a} for i, t, c, a in rows]


async def author_count() -> int:
    async with SessionLocal() as session:
        return int((await session.execute(select(func.count()).select_from(Author))).scalar_one())


async def copies_on_shelf() -> int:
    """Straight through the engine, no session: code that is given the engine joins too."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT coalesce(sum(copies), 0) FROM books"))).scalar_one())
