"""Complex transactions: several tables, all or nothing, committed or rolled back."""

import pytest

import dbscope


def test_an_order_across_tables_commits_as_one(db):
    # a complex transaction: user, order and its items, all or nothing
    with db.transaction() as tx:
        tx.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Alice Smith", "alice@example.com"])
        user_id = tx.execute("SELECT id FROM users WHERE email = ?", ["alice@example.com"]).rows[0]["id"]
        order = tx.execute("INSERT INTO orders (user_id, amount, status) VALUES (?, ?, ?)", [user_id, 99.99, "pending"])
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)",
            [order.last_insert_rowid, "prod-123", 2, 29.99],
        )

    orders = db.execute("SELECT o.amount, u.name FROM orders o JOIN users u ON o.user_id = u.id")
    assert [(r["name"], r["amount"]) for r in orders] == [("Alice Smith", 99.99)]
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-123'").scalar() == 98  # the trigger took 2


def test_explicit_commit_and_rollback(db):
    tx = db.transaction()
    try:
        tx.execute("INSERT INTO newsletter_subscribers (email) VALUES ('kept@example.com')")
        tx.commit()
    except Exception:
        tx.rollback()
        raise

    tx = db.transaction()
    tx.execute("INSERT INTO newsletter_subscribers (email) VALUES ('gone@example.com')")
    tx.rollback()

    assert [r["email"] for r in db.execute("SELECT email FROM newsletter_subscribers")] == ["kept@example.com"]


def test_an_error_in_the_middle_undoes_the_whole_transaction(db):
    with pytest.raises(Exception, match="CHECK constraint failed"), db.transaction() as tx:
        order = tx.execute("INSERT INTO orders (amount) VALUES (120.0)")
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, 'prod-789', 4, 20)",
            [order.last_insert_rowid],
        )
        # 4 of 5 T-shirts taken; 2 more would leave -1: the CHECK on stock aborts
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, 'prod-789', 2, 20)",
            [order.last_insert_rowid],
        )

    assert db.execute("SELECT COUNT(*) FROM orders").scalar() == 0
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-789'").scalar() == 5


def test_a_failed_order_gives_its_stock_back(db):
    with db.transaction() as tx:
        order_id = tx.execute("INSERT INTO orders (amount) VALUES (45.0)").last_insert_rowid
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, 'prod-456', 3, 15)",
            [order_id],
        )
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-456'").scalar() == 17

    db.execute("UPDATE orders SET status = 'failed' WHERE id = ?", [order_id])

    assert db.execute("SELECT stock FROM products WHERE id = 'prod-456'").scalar() == 20


def test_nested_transactions_are_savepoints(db):
    with db.transaction() as outer:
        outer.execute("INSERT INTO logs (message) VALUES ('outer')")
        with pytest.raises(RuntimeError), db.transaction() as inner:
            inner.execute("INSERT INTO logs (message) VALUES ('inner')")
            raise RuntimeError("undo only the inner part")

    assert [r["message"] for r in db.execute("SELECT message FROM logs")] == ["outer"]


def test_a_finished_transaction_cannot_be_used_again(db):
    tx = db.transaction()
    tx.execute("INSERT INTO logs (message) VALUES ('once')")
    tx.commit()

    with pytest.raises(dbscope.DbscopeError, match="already committed"):
        tx.execute("INSERT INTO logs (message) VALUES ('twice')")
    assert db.execute("SELECT COUNT(*) FROM logs").scalar() == 1
