"""Isolation verification: each test alone sees the seed data, in any order, under `-n 2`.

On one shared database file these are exactly the tests that break: the same unique
email from several tests, counts that include another test's rows, a table created by a
test that already exists for the next one, stock that another test already sold.
"""

import os

import pytest
from festival import database


@pytest.mark.parametrize("attempt", range(10))
def test_the_same_unique_email_in_every_test(db, attempt):
    db.execute("INSERT INTO users (name, email) VALUES (?, ?)", [f"Run {attempt}", "test@example.com"])
    db.execute("INSERT INTO newsletter_subscribers (email) VALUES (?)", ["test@example.com"])

    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_each_test_buys_from_full_stock(api, attempt):
    response = api.post("/api/products/prod-123/purchase", json={"quantity": 5})

    assert response.status_code == 201
    assert response.json()["remaining_stock"] == 95
    assert response.json()["order_id"] == 1  # the first order of this database


@pytest.mark.parametrize("attempt", range(3))
def test_a_table_created_by_a_test_is_gone_in_the_next(db, attempt):
    # complete isolation, schema included: on a shared database the second of these
    # fails with "table isolation_test already exists"
    db.execute("CREATE TABLE isolation_test (test_id TEXT, data TEXT)")
    db.execute("INSERT INTO isolation_test VALUES (?, ?)", [f"run-{attempt}", "test_data"])

    assert db.execute("SELECT COUNT(*) FROM isolation_test").scalar() == 1


def test_the_app_uses_this_tests_database(db, db_url, api):
    assert os.environ["DATABASE_URL"] == db_url
    api.post("/api/users", json={"name": "Via API", "email": "via-api@example.com"})

    assert database.get_database().url == db_url
    assert db.execute("SELECT name FROM users").scalar() == "Via API"


def test_the_app_singleton_follows_the_environment(db, db_url, monkeypatch):
    first = database.get_database()
    assert first.url == db_url and database.get_database() is first

    database.reset_for_testing()  # what dbscope_reset_hooks runs at every scope boundary
    monkeypatch.setenv("DATABASE_URL", "sqlite://")

    assert first.closed
    assert database.get_database().url == "sqlite://"


def test_no_other_scope_is_active(db, dbscope_scope, dbscope):
    stats = dbscope.get_stats()

    assert [s["id"] for s in stats["scopes"]] == [dbscope_scope.id]
    assert stats["scopes"][0]["test_name"].endswith("test_no_other_scope_is_active")
    assert stats["current_test_id"] == dbscope_scope.id
