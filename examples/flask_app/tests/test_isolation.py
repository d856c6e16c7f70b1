"""What one test commits, through the app or a factory, is gone for the next, and ids start again.

The numbered tests run in file order on one worker when a worker runs the whole file; with
``-n 2``'s default distribution each still checks the same thing on its own: whichever test
ran before, the tables are empty and ids start at 1.
"""

from __future__ import annotations

import pytest
from factories import BookFactory, MemberFactory
from lending.models import Book, Loan, Member
from sqlalchemy import func, select


def totals(db_session) -> tuple[int, int, int]:
    return tuple(db_session.scalar(select(func.count()).select_from(m)) for m in (Member, Book, Loan))


def test_1_commits_through_the_app_and_a_factory(client, db_session):
    assert totals(db_session) == (0, 0, 0)
    member, book = MemberFactory(), BookFactory()
    assert client.post("/loans", json={"member_id": member.id, "book_ids": [book.id]}).status_code == 201
    assert client.post("/members", json={"email": "test1@example.com", "name": "T1"}).status_code == 201
    assert totals(db_session) == (2, 1, 1)


def test_2_sees_none_of_it(client, db_session):
    assert totals(db_session) == (0, 0, 0)
    assert client.get("/books").get_json() == []
    assert client.post("/members", json={"email": "test1@example.com", "name": "T1"}).get_json()["id"] == 1


@pytest.mark.parametrize("n", range(4))
def test_every_test_gets_id_1_for_the_same_email(client, n):
    response = client.post("/members", json={"email": "same@example.com", "name": "Same"})
    assert response.get_json() == {"id": 1, "email": "same@example.com", "name": "Same"}
    assert BookFactory().id == 1
