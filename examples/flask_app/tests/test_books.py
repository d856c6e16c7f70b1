"""Books: the app commits and refuses a duplicate ISBN with 409."""

from __future__ import annotations

from factories import BookFactory
from lending.models import Book
from sqlalchemy import select


def test_adding_a_book_commits_it(client, db_session):
    response = client.post("/books", json={"title": "Middlemarch", "isbn": "978-0141439549", "copies": 3})
    assert response.status_code == 201
    assert response.get_json()["available"] == 3
    assert db_session.scalars(select(Book.title)).all() == ["Middlemarch"]


def test_a_duplicate_isbn_is_a_409(client, db_session):
    BookFactory(isbn="978-1-000000-0")
    assert client.post("/books", json={"title": "Copy", "isbn": "978-1-000000-0"}).status_code == 409
    assert len(db_session.scalars(select(Book)).all()) == 1


def test_the_list_shows_the_factorys_books_in_order(client):
    books = BookFactory.create_batch(3)
    assert [b["isbn"] for b in client.get("/books").get_json()] == [b.isbn for b in books]
