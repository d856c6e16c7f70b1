"""Transactions: commit on success, roll back on error, nest as savepoints."""

import pytest


def test_complex_transaction_commits_across_tables(db):
    with db.transaction() as tx:
        tx.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Alice Smith", "alice@example.com"])
        user_id = tx.execute("SELECT id FROM users WHERE email = ?", ["alice@example.com"]).rows[0]["id"]
        order = tx.execute("INSERT INTO orders (user_id, amount, status) VALUES (?, ?, ?)", [user_id, 59.98, "pending"])
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity) VALUES (?, ?, ?)",
            [order.last_insert_rowid, "prod-123", 2],
        )

    orders = db.execute("SELECT o.amount, u.name FROM orders o JOIN users u ON o.user_id = u.id")
    assert [(r["name"], r["amount"]) for r in orders] == [("Alice Smith", 59.98)]
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-123'").scalar() == 98


def test_explicit_commit_and_rollback(db):
    tx = db.transaction()
    tx.execute("INSERT INTO users (name, email) VALUES ('Kept', 'kept@example.com')")
    tx.commit()

    tx = db.transaction()
    tx.execute("INSERT INTO users (name, email) VALUES ('Gone', 'gone@example.com')")
    tx.rollback()

    assert [r["name"] for r in db.execute("SELECT name FROM users")] == ["Kept"]


def test_an_error_rolls_the_whole_transaction_back(db):
    with pytest.raises(Exception, match="UNIQUE"):
        with db.transaction() as tx:
            tx.execute("INSERT INTO users (name, email) VALUES ('One', 'same@example.com')")
            tx.execute("INSERT INTO users (name, email) VALUES ('Two', 'same@example.com')")

    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0


def test_nested_transactions_are_savepoints(db):
    with db.transaction() as outer:
        outer.execute("INSERT INTO users (name, email) VALUES ('Outer', 'outer@example.com')")
        with pytest.raises(RuntimeError):
            with db.transaction() as inner:
                inner.execute("INSERT INTO users (name, email) VALUES ('Inner', 'inner@example.com')")
                raise RuntimeError("undo only the inner part")

    assert [r["name"] for r in db.execute("SELECT name FROM users")] == ["Outer"]
