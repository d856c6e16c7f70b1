"""The Starlette endpoints, called in the test's event loop through httpx's ASGI transport."""

from __future__ import annotations

from typing import Any

from .factories import BookFactory


async def test_creating_an_author(client: Any, db: Any) -> None:
    response = await client.post("/authors", json={"name": "Martha Wells"})
    assert response.status_code == 201
    assert db.execute("SELECT name FROM authors WHERE id = ?", [response.json()["id"]]).scalar() == "Martha Wells"


async def test_a_duplicate_author_is_a_conflict(client: Any) -> None:
    assert (await client.post("/authors", json={"name": "Martha Wells"})).status_code == 201
    response = await client.post("/authors", json={"name": "Martha Wells"})
    assert response.status_code == 409


async def test_the_books_served_are_the_factorys(client: Any) -> None:
    book = BookFactory(title="A Memory Called Empire")
    assert (await client.get("/books")).json() == [
        {"id": book.id, "title": "A Memory Called Empire", "copies": 2, "author": book.author.name}
    ]


async def test_borrowing_until_none_are_left(client: Any) -> None:
    book = BookFactory(copies=1)
    assert (await client.post(f"/books/{book.id}/borrow")).json() == {"copies": 0}
    assert (await client.post(f"/books/{book.id}/borrow")).status_code == 409
    assert (await client.post("/books/999999/borrow")).status_code == 404
