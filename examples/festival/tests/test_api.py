"""API tests: requests go through the app, which opens the database named by DATABASE_URL.

The test prepares and checks data with `db`; the app, running in TestClient's own
thread, reads and writes the very same per-test database through the URL.
"""

from festival.shop import DECLINED_CARD


def test_get_a_product(api):
    response = api.get("/api/products/prod-123")

    assert response.status_code == 200
    assert response.json() == {
        "id": "prod-123",
        "name": "Full Festival Pass",
        "price": 29.99,
        "stock": 100,
        "event_id": 1,
    }


def test_data_written_by_the_test_is_served_by_the_app(db, api):
    db.execute(
        "INSERT INTO products (id, name, price, stock) VALUES (?, ?, ?, ?)", ["prod-999", "Test Product", 12.5, 7]
    )

    assert api.get("/api/products/prod-999").json()["name"] == "Test Product"
    assert api.get("/api/products/nope").status_code == 404


def test_buying_5_of_100_leaves_95(db, api):
    response = api.post("/api/products/prod-123/purchase", json={"quantity": 5})

    assert response.status_code == 201
    assert response.json()["remaining_stock"] == 95
    assert db.execute("SELECT stock FROM products WHERE id = ?", ["prod-123"]).scalar() == 95
    assert db.execute("SELECT quantity FROM order_items").scalar() == 5


def test_overselling_is_refused_with_409_and_changes_nothing(db, api):
    response = api.post("/api/products/prod-789/purchase", json={"quantity": 6})

    assert response.status_code == 409
    assert "only 5 of prod-789 left" in response.json()["error"]
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-789'").scalar() == 5
    assert db.execute("SELECT COUNT(*) FROM orders").scalar() == 0


def test_bad_requests_are_400(api):
    assert api.post("/api/products/prod-123/purchase", json={"quantity": 0}).status_code == 400
    assert api.post("/api/products/prod-123/purchase", content=b"not json").status_code == 400
    assert api.post("/api/users", json={"name": "No Email"}).status_code == 400


def test_register_a_user_once(db, api):
    first = api.post("/api/users", json={"name": "Carlos", "email": "carlos@example.com"})
    again = api.post("/api/users", json={"name": "Carlos", "email": "CARLOS@example.com"})

    assert first.status_code == 201
    assert again.status_code == 409
    assert api.get(f"/api/users/{first.json()['id']}").json()["email"] == "carlos@example.com"
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1


def test_event_registration_until_the_workshop_is_full(db, api):
    for i in range(4):
        api.post("/api/users", json={"name": f"Dancer {i}", "email": f"dancer{i}@example.com"})

    statuses = [
        api.post("/api/events/salsa-on2-workshop/registrations", json={"email": f"dancer{i}@example.com"}).status_code
        for i in range(4)
    ]
    twice = api.post("/api/events/rueda-de-casino/registrations", json={"email": "dancer0@example.com"})
    twice_again = api.post("/api/events/rueda-de-casino/registrations", json={"email": "dancer0@example.com"})

    assert statuses == [201, 201, 201, 409]
    assert (twice.status_code, twice_again.status_code) == (201, 409)
    places = {e["slug"]: e["places_left"] for e in api.get("/api/events").json()}
    assert places == {"opening-night": 300, "salsa-on2-workshop": 0, "rueda-de-casino": 24}


def test_cart_checkout_payment_and_tickets(db, api, user):
    cart = api.post("/api/carts", json={"email": user["email"]}).json()
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-123", "quantity": 2})
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-789", "quantity": 1})
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-123", "quantity": 1})
    assert api.get(f"/api/carts/{cart['id']}").json()["total"] == 109.97

    order = api.post(f"/api/carts/{cart['id']}/checkout").json()
    paid = api.post(
        f"/api/orders/{order['order_id']}/payments", json={"card_number": "4242424242424242", "holder_name": "Ana"}
    )

    assert paid.status_code == 200
    assert len(paid.json()["tickets"]) == 3  # the passes are tickets to opening night; the T-shirt is not
    ticket = api.get(f"/api/tickets/{paid.json()['tickets'][0]}").json()
    assert (ticket["event"], ticket["status"], ticket["holder_name"]) == ("opening-night", "valid", "Ana")
    assert db.execute("SELECT status FROM orders WHERE id = ?", [order["order_id"]]).scalar() == "paid"
    assert db.execute("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").scalar() == 1
    assert api.post(f"/api/carts/{cart['id']}/checkout").status_code == 409


def test_a_checkout_short_of_stock_buys_nothing(db, api):
    cart = api.post("/api/carts", json={}).json()
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-123", "quantity": 3})
    api.post(f"/api/carts/{cart['id']}/items", json={"product_id": "prod-789", "quantity": 9})

    assert api.post(f"/api/carts/{cart['id']}/checkout").status_code == 409
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-123'").scalar() == 100
    assert db.execute("SELECT status FROM carts WHERE id = ?", [cart["id"]]).scalar() == "open"


def test_a_declined_payment_fails_the_order_and_restores_stock(db, api):
    order = api.post("/api/products/prod-456/purchase", json={"quantity": 4}).json()
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-456'").scalar() == 16

    declined = api.post(f"/api/orders/{order['order_id']}/payments", json={"card_number": DECLINED_CARD})

    assert declined.json() == {"order_id": order["order_id"], "payment": "declined", "status": "failed", "tickets": []}
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-456'").scalar() == 20
    assert api.get(f"/api/orders/{order['order_id']}").json()["status"] == "failed"


def test_a_ticket_checks_in_once(db, api):
    order = api.post("/api/products/prod-456/purchase", json={"quantity": 1}).json()
    code = api.post(f"/api/orders/{order['order_id']}/payments", json={"card_number": "4242"}).json()["tickets"][0]

    assert api.post(f"/api/tickets/{code}/check-in").json()["status"] == "used"
    assert api.post(f"/api/tickets/{code}/check-in").status_code == 409
    assert api.get("/api/tickets/ALCBF-NOPE").status_code == 404


def test_newsletter_subscription_is_unique_per_email(db, api):
    assert api.post("/api/newsletter", json={"email": "fan@example.com"}).status_code == 201
    assert api.post("/api/newsletter", json={"email": "Fan@Example.com"}).status_code == 409
    assert db.execute("SELECT COUNT(*) FROM newsletter_subscribers").scalar() == 1


def test_logs_written_through_the_api(db, api):
    api.post("/api/logs", json={"message": "doors open", "level": "info"})
    api.post("/api/logs", json={"message": "sound check late", "level": "warning"})

    assert [r["message"] for r in api.get("/api/logs", params={"level": "warning"}).json()] == ["sound check late"]
    assert db.execute("SELECT COUNT(*) FROM logs").scalar() == 2


def test_health(api):
    assert api.get("/api/health").json() == {"status": "ok"}
