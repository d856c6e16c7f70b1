"""Failure paths: rollback after failure, timeouts, and a client used after its test."""

import threading
import time

import pytest
from festival import database

from dbscope import ClientClosedError

# A statement that runs for many seconds unless it is interrupted.
SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) SELECT COUNT(*) FROM c"


def test_the_client_is_usable_after_a_rolled_back_transaction(db):
    # a rolled-back transaction leaves the connection usable, and nothing of it behind
    tx = db.transaction()
    tx.execute("CREATE TABLE rollback_test (id INTEGER)")
    tx.execute("INSERT INTO rollback_test (id) VALUES (1)")
    tx.rollback()

    assert db.execute("SELECT 1 AS post_rollback").rows[0]["post_rollback"] == 1
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'rollback_test'").scalar() == 0


def test_the_client_is_usable_after_a_constraint_error(db):
    db.execute("INSERT INTO newsletter_subscribers (email) VALUES ('dup@example.com')")
    with pytest.raises(Exception, match="UNIQUE"):
        db.execute("INSERT INTO newsletter_subscribers (email) VALUES ('dup@example.com')")

    assert db.health_check()
    assert db.stats()["errors"] == 1


def test_an_app_error_mid_checkout_rolls_everything_back(db, api, monkeypatch):
    from festival import shop

    def broken_update(*args, **kwargs):
        raise RuntimeError("payment provider exploded")

    cart = api.post("/api/carts", json={}).json()
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-123", "quantity": 2})
    order = api.post(f"/api/carts/{cart['id']}/checkout").json()
    monkeypatch.setattr(shop.secrets, "token_hex", broken_update)  # fails after the payment row is written

    with pytest.raises(RuntimeError, match="exploded"):
        api.post(f"/api/orders/{order['order_id']}/payments", json={"card_number": "4242"})

    assert db.execute("SELECT COUNT(*) FROM payments").scalar() == 0
    assert db.execute("SELECT status FROM orders").scalar() == "pending"
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-123'").scalar() == 98


@pytest.mark.xfail(strict=True, reason="fails on purpose with a transaction open: dbscope still cleans up")
def test_a_test_that_fails_inside_a_transaction(db):
    tx = db.transaction()
    tx.execute("INSERT INTO users (name, email) VALUES ('Never', 'never@example.com')")
    assert tx.execute("SELECT COUNT(*) FROM users").scalar() == 0  # fails; the transaction is never ended


def test_a_statement_past_the_apps_timeout_is_interrupted(db, monkeypatch):
    monkeypatch.setenv("FESTIVAL_STATEMENT_TIMEOUT_MS", "100")
    database.reset_for_testing()  # the singleton reads its settings at first use

    started = time.monotonic()
    with pytest.raises(database.StatementTimeout):
        database.get_database().execute(SLOW_SQL)

    assert time.monotonic() - started < 2
    assert database.get_database().execute("SELECT 1 AS ok") == [{"ok": 1}]


def test_closing_a_busy_client_is_bounded_by_its_timeout(db):
    # timeout protection: a statement still running in another thread does not hold up
    # the close; it is interrupted after the timeout
    outcome = []

    def slow():
        try:
            db.execute(SLOW_SQL)
            outcome.append("finished")
        except Exception as exc:  # noqa: BLE001 -- record whatever stopped it
            outcome.append(str(exc))

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.1)
    started = time.monotonic()
    db.close(timeout=0.2)
    worker.join(5)

    assert time.monotonic() - started < 2
    assert outcome == ["interrupted"]  # waited 0.2 s for it, then interrupted it
    assert db.closed
    with pytest.raises(ClientClosedError):
        db.execute("SELECT 1")


def test_a_scope_ends_within_close_timeout_even_with_a_statement_running(dbscope, db):
    outcome = []
    with dbscope.scope("slow report", close_timeout=0.2) as scope:
        client = scope.client()
        worker = threading.Thread(target=lambda: outcome.append(_run(client, SLOW_SQL)))
        worker.start()
        time.sleep(0.1)
        started = time.monotonic()
    ended_in = time.monotonic() - started
    worker.join(5)

    assert ended_in < 2
    assert outcome == ["interrupted"]


def test_a_closed_client_raises_client_closed_error(db):
    db.execute("INSERT INTO logs (message) VALUES ('before close')")
    db.close()

    assert db.closed and not db.health_check()
    with pytest.raises(ClientClosedError):
        db.execute("SELECT COUNT(*) FROM logs")


def test_a_client_kept_past_its_scope_names_the_scope_and_test(dbscope, db):
    # a client used after its scope ended: the error says which scope, which test, closed where
    with dbscope.scope("checkout works") as scope:
        kept = scope.client()
        kept.execute("SELECT 1")

    with pytest.raises(ClientClosedError, match=rf"scope {scope.id} \(test 'checkout works'\) is closed"):
        kept.execute("SELECT 1")


def _run(client, sql):
    try:
        client.execute(sql)
        return "finished"
    except Exception as exc:  # noqa: BLE001 -- record whatever stopped it
        return str(exc)
