"""Basic CRUD through the `db` client: a fresh, migrated, seeded database in every test."""

import pytest


def test_create_and_read_a_user(db):
    db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["John Doe", "john@example.com"])

    result = db.execute("SELECT * FROM users WHERE email = ?", ["john@example.com"])

    assert len(result.rows) == 1
    assert result.rows[0]["name"] == "John Doe"
    assert result.rows[0].email == "john@example.com"


def test_every_test_starts_from_the_seed_and_nothing_else(db):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
    assert db.execute("SELECT COUNT(*) FROM orders").scalar() == 0
    stock = {r["id"]: r["stock"] for r in db.execute("SELECT id, stock FROM products")}
    assert stock == {"prod-123": 100, "prod-456": 20, "prod-789": 5}


def test_named_arguments_and_result_metadata(db):
    inserted = db.execute(
        "INSERT INTO events (slug, name, starts_at, venue, capacity) VALUES (:slug, :name, :at, :venue, :cap)",
        {"slug": "closing-party", "name": "Closing Party", "at": "2026-05-17T21:00", "venue": "Avalon", "cap": 250},
    )
    row = db.execute("SELECT id, slug, capacity FROM events WHERE id = ?", [inserted.last_insert_rowid]).rows[0]

    assert inserted.rows_affected == 1
    assert (row[1], row["capacity"]) == ("closing-party", 250)
    assert db.execute("SELECT id, slug FROM events WHERE slug = 'closing-party'").columns == ("id", "slug")


def test_update_a_user(db, user):
    updated = db.execute("UPDATE users SET name = ? WHERE id = ?", ["Ana R. Gómez", user["id"]])

    assert updated.rows_affected == 1
    assert db.execute("SELECT name FROM users WHERE id = ?", [user["id"]]).scalar() == "Ana R. Gómez"


def test_deleting_a_user_cascades_to_registrations(db, user):
    db.execute("INSERT INTO registrations (user_id, event_id) VALUES (?, 1)", [user["id"]])

    db.execute("DELETE FROM users WHERE id = ?", [user["id"]])

    assert db.execute("SELECT COUNT(*) FROM registrations").scalar() == 0


def test_foreign_keys_are_enforced(db):
    with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
        db.execute("INSERT INTO orders (user_id, amount) VALUES (?, ?)", [999, 10.0])


def test_emails_are_unique_whatever_their_case(db, user):
    with pytest.raises(Exception, match="UNIQUE constraint failed: users.email"):
        db.execute("INSERT INTO users (name, email) VALUES ('Ana again', 'ANA@example.com')")


def test_the_capacity_trigger_refuses_a_full_event(db):
    dancers = db.batch(
        [("INSERT INTO users (name, email) VALUES (?, ?)", [f"Dancer {i}", f"dancer{i}@example.com"]) for i in range(4)]
    )
    ids = [r.last_insert_rowid for r in dancers]
    for user_id in ids[:3]:  # the On2 workshop (event 2) has 3 places
        db.execute("INSERT INTO registrations (user_id, event_id) VALUES (?, 2)", [user_id])

    with pytest.raises(Exception, match="event is full"):
        db.execute("INSERT INTO registrations (user_id, event_id) VALUES (?, 2)", [ids[3]])
