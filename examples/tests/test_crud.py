"""Basic CRUD: each test gets its own fresh database, so no test cleans up after itself."""


def test_insert_and_read_back_a_user(db):
    db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["John Doe", "john@example.com"])

    result = db.execute("SELECT * FROM users WHERE email = ?", ["john@example.com"])

    assert len(result.rows) == 1
    assert result.rows[0]["name"] == "John Doe"
    assert result.rows[0].email == "john@example.com"


def test_named_arguments_and_rows_by_index(db):
    db.execute("INSERT INTO users (name, email) VALUES (:name, :email)", {"name": "Ana", "email": "ana@example.com"})

    row = db.execute("SELECT id, name FROM users").rows[0]

    assert row[1] == "Ana"
    assert row == (row["id"], "Ana")


def test_update_and_delete_report_affected_rows(db):
    inserted = db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Bo", "bo@example.com"])
    assert inserted.last_insert_rowid == 1

    assert db.execute("UPDATE users SET name = ? WHERE id = ?", ["Bob", 1]).rows_affected == 1
    assert db.execute("DELETE FROM users WHERE id = ?", [1]).rows_affected == 1
    assert db.execute("SELECT COUNT(*) AS count FROM users").rows[0]["count"] == 0


def test_seed_data_is_there_for_every_test(db):
    products = db.execute("SELECT id, stock FROM products ORDER BY id")

    assert [tuple(r) for r in products] == [("prod-123", 100), ("prod-456", 20)]


def test_constraints_are_enforced(db):
    import sqlite3

    import pytest

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute("INSERT INTO orders (user_id, amount) VALUES (?, ?)", [999, 1.0])
