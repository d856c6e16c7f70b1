"""Isolation verification: run these in any order, alone, or under `pytest -n 2`."""

import pytest


@pytest.mark.parametrize("attempt", range(20))
def test_the_same_unique_email_in_every_test(db, attempt):
    # On one shared database this is a UNIQUE violation from the second test on.
    db.execute("INSERT INTO users (name, email) VALUES (?, ?)", [f"Run {attempt}", "test@example.com"])

    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1


def test_each_test_gets_its_own_database(db, dbscope_scope, dbscope):
    others = [s for s in dbscope.get_stats()["scopes"] if s["id"] != dbscope_scope.id]

    assert others == []
    assert dbscope_scope.test_name.endswith("test_each_test_gets_its_own_database")
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0


@pytest.mark.dbscope(seed="seed_sold_out.sql")
def test_the_marker_overrides_settings_per_test(db):
    # another seed means another template (keyed by its fingerprint), built once and cloned
    assert [tuple(r) for r in db.execute("SELECT id, stock FROM products")] == [("prod-123", 0)]


def test_a_client_kept_after_its_test_fails_clearly(dbscope):
    import dbscope as lib

    with dbscope.scope("a short-lived scope") as scope:
        client = scope.client()
    with pytest.raises(lib.ClientClosedError, match="a short-lived scope"):
        client.execute("SELECT 1")
