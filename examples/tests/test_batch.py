"""Batches: all statements take effect, or none does."""

import pytest


def test_batch_runs_every_statement(db):
    results = db.batch(
        [
            ("INSERT INTO users (name, email) VALUES (?, ?)", ["A", "a@example.com"]),
            ("INSERT INTO users (name, email) VALUES (?, ?)", ["B", "b@example.com"]),
            "SELECT COUNT(*) AS count FROM users",
        ]
    )

    assert results[-1].rows[0]["count"] == 2


def test_a_failing_statement_undoes_the_whole_batch(db):
    with pytest.raises(Exception, match="CHECK"):
        db.batch(
            [
                "INSERT INTO users (name, email) VALUES ('A', 'a@example.com')",
                "UPDATE products SET stock = -1 WHERE id = 'prod-123'",
            ]
        )

    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-123'").scalar() == 100
