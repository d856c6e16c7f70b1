"""Authors: commits, a unique name answered with 409, all-or-nothing and savepoint bulk inserts."""

from __future__ import annotations

from bookshop.models import Author
from factories import AuthorFactory, BookFactory
from sqlalchemy import func, select


def test_creating_an_author_commits_it(client, db_session):
    response = client.post("/authors", json={"name": "Ursula K. Le Guin"})
    assert response.status_code == 201
    assert response.json() == {"id": 1, "name": "Ursula K. Le Guin"}  # every test starts on empty tables
    assert db_session.scalars(select(Author.name)).all() == ["Ursula K. Le Guin"]


def test_a_duplicate_name_is_a_409_and_the_first_author_stays(client, db_session):
    assert client.post("/authors", json={"name": "Octavia Butler"}).status_code == 201
    response = client.post("/authors", json={"name": "Octavia Butler"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert db_session.scalar(select(func.count()).select_from(Author)) == 1
    # the app's session recovered from the IntegrityError: the next request works
    assert client.post("/authors", json={"name": "Iain Banks"}).status_code == 201


def test_a_duplicate_of_a_factory_author_is_a_409(client):
    AuthorFactory(name="Stanislaw Lem")
    assert client.post("/authors", json={"name": "Stanislaw Lem"}).status_code == 409


def test_an_unknown_author_is_a_404(client):
    assert client.get("/authors/999").status_code == 404


def test_a_bulk_insert_with_a_duplicate_rolls_back_all_of_it(client, db_session):
    AuthorFactory(name="Kim Stanley Robinson")
    response = client.post("/authors/bulk", json=["Ann Leckie", "Kim Stanley Robinson", "N. K. Jemisin"])
    assert response.status_code == 409
    names = db_session.scalars(select(Author.name).order_by(Author.id)).all()
    assert names == ["Kim Stanley Robinson"]  # Ann Leckie, flushed before the error, was rolled back


def test_a_bulk_insert_skipping_duplicates_uses_a_savepoint_per_author(client, db_session):
    AuthorFactory(name="Ted Chiang")
    response = client.post("/authors/bulk?skip_existing=true", json=["Ann Leckie", "Ted Chiang", "Becky Chambers"])
    assert response.status_code == 201
    assert [a["name"] for a in response.json()] == ["Ann Leckie", "Becky Chambers"]
    names = db_session.scalars(select(Author.name).order_by(Author.name)).all()
    assert names == ["Ann Leckie", "Becky Chambers", "Ted Chiang"]


def test_an_author_lists_the_books_the_factory_made(client):
    author = AuthorFactory(name="Gene Wolfe")
    BookFactory.create_batch(2, author=author)
    body = client.get(f"/authors/{author.id}").json()
    assert body["name"] == "Gene Wolfe"
    assert len(body["books"]) == 2
