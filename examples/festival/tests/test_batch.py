"""Batch operations: several statements in one round, all of them or none."""

import pytest


def test_a_batch_applies_every_statement(db):
    statements = [
        ("INSERT INTO users (name, email) VALUES (?, ?)", [f"User{i}", f"user{i}@example.com"]) for i in range(3)
    ]

    results = db.batch(statements)

    assert [r.rows_affected for r in results] == [1, 1, 1]
    assert db.execute("SELECT COUNT(*) AS count FROM users").rows[0]["count"] == 3


def test_a_failing_statement_undoes_the_whole_batch(db):
    with pytest.raises(Exception, match="UNIQUE constraint failed"):
        db.batch(
            [
                ("INSERT INTO newsletter_subscribers (email) VALUES (?)", ["a@example.com"]),
                ("INSERT INTO newsletter_subscribers (email) VALUES (?)", ["b@example.com"]),
                ("INSERT INTO newsletter_subscribers (email) VALUES (?)", ["a@example.com"]),
            ]
        )

    assert db.execute("SELECT COUNT(*) FROM newsletter_subscribers").scalar() == 0


def test_a_batch_mixes_reads_and_writes(db):
    results = db.batch(
        [
            "UPDATE products SET stock = stock + 10 WHERE id = 'prod-789'",
            ("INSERT INTO logs (level, message) VALUES (?, ?)", ["info", "restocked T-shirts"]),
            "SELECT stock FROM products WHERE id = 'prod-789'",
        ]
    )

    assert results[0].rows_affected == 1
    assert results[1].last_insert_rowid is not None
    assert results[2].scalar() == 15


def test_a_batch_prepared_catalogue_is_sold_through_the_api(db, api):
    db.batch(
        [
            (
                "INSERT INTO products (id, name, price, stock) VALUES (?, ?, ?, ?)",
                [f"poster-{i}", f"Poster {i}", 5.0, 2],
            )
            for i in range(5)
        ]
    )

    statuses = [api.post(f"/api/products/poster-{i % 5}/purchase", json={"quantity": 1}).status_code for i in range(15)]

    assert statuses.count(201) == 10
    assert statuses.count(409) == 5
    assert db.execute("SELECT SUM(stock) FROM products WHERE id LIKE 'poster-%'").scalar() == 0
