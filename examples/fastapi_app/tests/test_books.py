"""Books: the app commits, refuses a duplicate ISBN (409) and an unknown author (404)."""

from __future__ import annotations

from bookshop.models import Book
from factories import AuthorFactory, BookFactory
from sqlalchemy import select


def test_creating_a_book_commits_it(client, db_session):
    author = AuthorFactory()
    response = client.post("/books", json={"title": "Dune", "isbn": "978-0441013593", "author_id": author.id})
    assert response.status_code == 201
    book = db_session.scalars(select(Book)).one()
    assert (book.title, book.author_id) == ("Dune", author.id)


def test_a_duplicate_isbn_is_a_409(client, db_session):
    book = BookFactory(isbn="978-0-00-000001-1")
    payload = {"title": "Copy", "isbn": "978-0-00-000001-1", "author_id": book.author_id}
    assert client.post("/books", json=payload).status_code == 409
    assert db_session.scalars(select(Book.title)).all() == [book.title]


def test_an_unknown_author_is_a_404_and_nothing_is_written(client, db_session):
    response = client.post("/books", json={"title": "Orphan", "isbn": "1", "author_id": 42})
    assert response.status_code == 404
    assert db_session.scalars(select(Book)).all() == []


def test_the_list_shows_the_factorys_books_in_order(client):
    books = BookFactory.create_batch(3)
    assert [b["id"] for b in client.get("/books").json()] == [b.id for b in books]


def test_a_restock_commits(client, db):
    book = BookFactory(stock=1)
    assert client.post(f"/books/{book.id}/restock?quantity=4").json()["stock"] == 5
    # `db`, dbscope's own client, reads what the app committed
    assert db.execute("SELECT stock FROM books WHERE id = ?", [book.id]).scalar() == 5
