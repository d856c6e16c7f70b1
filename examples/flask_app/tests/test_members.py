"""Members: commits, a unique email answered with 409, an all-or-nothing import."""

from __future__ import annotations

from factories import LoanFactory, MemberFactory
from lending.models import Member
from sqlalchemy import func, select


def test_adding_a_member_commits_it(client, db_session):
    response = client.post("/members", json={"email": "ana@example.com", "name": "Ana"})
    assert response.status_code == 201
    assert response.get_json() == {"id": 1, "email": "ana@example.com", "name": "Ana"}  # ids start at 1
    assert db_session.scalars(select(Member.email)).all() == ["ana@example.com"]


def test_a_duplicate_email_is_a_409_and_the_app_carries_on(client, db_session):
    MemberFactory(email="ben@example.com")
    response = client.post("/members", json={"email": "ben@example.com", "name": "Another Ben"})
    assert response.status_code == 409
    assert "already exists" in response.get_json()["error"]
    assert client.post("/members", json={"email": "cy@example.com", "name": "Cy"}).status_code == 201
    assert db_session.scalar(select(func.count()).select_from(Member)) == 2


def test_an_import_with_a_duplicate_adds_nobody(client, db_session):
    MemberFactory(email="di@example.com")
    people = [{"email": "ed@example.com", "name": "Ed"}, {"email": "di@example.com", "name": "Di again"}]
    assert client.post("/members/import", json=people).status_code == 409
    assert db_session.scalars(select(Member.email)).all() == ["di@example.com"]


def test_an_import_commits_every_member(client, db):
    people = [{"email": f"p{n}@example.com", "name": f"P{n}"} for n in range(3)]
    assert [m["id"] for m in client.post("/members/import", json=people).get_json()] == [1, 2, 3]
    assert db.execute("SELECT count(*) FROM members").scalar() == 3  # dbscope's own client sees the commit


def test_an_unknown_member_is_a_404(client):
    assert client.get("/members/7").status_code == 404


def test_a_member_shows_the_factorys_open_loans(client):
    loan = LoanFactory()
    returned = LoanFactory(member=loan.member)
    assert client.post(f"/loans/{returned.id}/return").status_code == 200  # returned: not listed
    body = client.get(f"/members/{loan.member.id}").get_json()
    assert body["open_loans"] == [loan.book.id]
