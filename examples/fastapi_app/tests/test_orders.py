"""Orders: one request writes an order, its lines and the stock; a failure rolls all of it back."""

from __future__ import annotations

from bookshop.models import Book, Order, OrderLine
from factories import BookFactory
from sqlalchemy import func, select


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_an_order_takes_books_from_stock(client, db_session):
    dune, emma = BookFactory(stock=3, price_cents=900), BookFactory(stock=1, price_cents=500)
    lines = [{"book_id": dune.id, "quantity": 2}, {"book_id": emma.id}]
    response = client.post("/orders", json={"customer_email": "ana@example.com", "lines": lines})
    assert response.status_code == 201
    assert response.json() == {"id": 1, "customer_email": "ana@example.com", "total_cents": 2300}
    db_session.expire_all()
    assert (dune.stock, emma.stock) == (1, 0)
    assert count(db_session, OrderLine) == 2


def test_short_stock_rolls_back_the_whole_order(client, db_session):
    plenty, scarce = BookFactory(stock=10), BookFactory(stock=1)
    lines = [{"book_id": plenty.id, "quantity": 4}, {"book_id": scarce.id, "quantity": 2}]
    response = client.post("/orders", json={"customer_email": "ben@example.com", "lines": lines})
    assert response.status_code == 409
    assert "only 1" in response.json()["detail"]
    db_session.expire_all()
    assert plenty.stock == 10  # the first line's stock change was rolled back by the app
    assert (count(db_session, Order), count(db_session, OrderLine)) == (0, 0)


def test_an_unknown_book_rolls_back_the_order(client, db_session):
    book = BookFactory(stock=2)
    lines = [{"book_id": book.id, "quantity": 1}, {"book_id": 404}]
    assert client.post("/orders", json={"customer_email": "cy@example.com", "lines": lines}).status_code == 404
    assert count(db_session, Order) == 0
    assert db_session.scalar(select(Book.stock).where(Book.id == book.id)) == 2


def test_a_failed_order_leaves_the_previous_one_committed(client):
    book = BookFactory(stock=1)
    first = client.post("/orders", json={"customer_email": "di@example.com", "lines": [{"book_id": book.id}]})
    assert first.status_code == 201
    second = client.post("/orders", json={"customer_email": "ed@example.com", "lines": [{"book_id": book.id}]})
    assert second.status_code == 409
    assert [o["customer_email"] for o in client.get("/orders").json()] == ["di@example.com"]
    assert client.get(f"/books/{book.id}").json()["stock"] == 0
