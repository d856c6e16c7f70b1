"""What one test commits, through the app or a factory, is gone for the next, and ids start again.

The numbered tests run in file order on one worker (``-n 2`` gives a worker whole files
only with ``--dist loadfile``; with the default distribution each of them checks the
same thing on its own: whichever ran before, the tables are empty and ids start at 1).
"""

from __future__ import annotations

import pytest
from bookshop.models import Author, Book, Order
from factories import BookFactory
from sqlalchemy import func, select


def totals(db_session) -> tuple[int, int, int]:
    return tuple(db_session.scalar(select(func.count()).select_from(m)) for m in (Author, Book, Order))


def test_1_commits_through_the_app_and_a_factory(client, db_session):
    assert totals(db_session) == (0, 0, 0)
    book = BookFactory(stock=2)
    assert (
        client.post("/orders", json={"customer_email": "a@example.com", "lines": [{"book_id": book.id}]}).json()["id"]
        == 1
    )
    assert client.post("/authors", json={"name": "Committed by test 1"}).status_code == 201
    assert totals(db_session) == (2, 1, 1)


def test_2_sees_none_of_it(client, db_session):
    assert totals(db_session) == (0, 0, 0)
    assert client.get("/books").json() == []
    assert client.post("/authors", json={"name": "Committed by test 1"}).json()["id"] == 1  # no 409: it is gone


@pytest.mark.parametrize("n", range(4))
def test_every_test_gets_id_1_for_the_same_name(client, n):
    assert client.post("/authors", json={"name": "The same author"}).json() == {"id": 1, "name": "The same author"}
    assert BookFactory().id == 1
