"""Loans: one request writes several loans and the stock; a refused one rolls all of it back."""

from __future__ import annotations

from factories import BookFactory, LoanFactory, MemberFactory
from lending.models import Book, Loan
from sqlalchemy import func, select


def loans(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Loan))


def test_borrowing_commits_the_loans_and_the_stock(client, db_session):
    member, first, second = MemberFactory(), BookFactory(copies=1), BookFactory(copies=2)
    response = client.post("/loans", json={"member_id": member.id, "book_ids": [first.id, second.id]})
    assert response.status_code == 201
    assert [loan["id"] for loan in response.get_json()] == [1, 2]
    db_session.expire_all()
    assert (first.available, second.available) == (0, 1)


def test_an_unavailable_book_rolls_back_the_whole_request(client, db_session):
    member, free, taken = MemberFactory(), BookFactory(copies=1), BookFactory(copies=1, available=0)
    response = client.post("/loans", json={"member_id": member.id, "book_ids": [free.id, taken.id]})
    assert response.status_code == 409
    assert "no copy" in response.get_json()["error"]
    db_session.expire_all()
    assert free.available == 1  # taken from stock for the first loan, then rolled back by the app
    assert loans(db_session) == 0


def test_the_same_book_twice_is_a_unique_violation_answered_with_409(client, db_session):
    loan = LoanFactory()
    response = client.post("/loans", json={"member_id": loan.member.id, "book_ids": [loan.book.id]})
    assert response.status_code == 409
    assert "already has" in response.get_json()["error"]
    assert loans(db_session) == 1


def test_a_fourth_book_is_refused_and_nothing_is_lent(client, db_session):
    member = MemberFactory()
    books = BookFactory.create_batch(4)
    response = client.post("/loans", json={"member_id": member.id, "book_ids": [b.id for b in books]})
    assert response.status_code == 409
    assert loans(db_session) == 0
    assert db_session.scalar(select(func.sum(Book.available))) == 8


def test_returning_a_loan_commits_and_a_second_return_is_a_409(client, db):
    loan = LoanFactory(book__copies=1, book__available=0)
    assert client.post(f"/loans/{loan.id}/return").status_code == 200
    assert db.execute("SELECT available FROM books WHERE id = ?", [loan.book.id]).scalar() == 1
    assert client.post(f"/loans/{loan.id}/return").status_code == 409


def test_an_unknown_book_is_a_404(client):
    member = MemberFactory()
    assert client.post("/loans", json={"member_id": member.id, "book_ids": [99]}).status_code == 404
