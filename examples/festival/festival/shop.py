"""What the festival does, as plain functions over :func:`festival.database.get_database`.

The web layer (app.py) only parses requests and maps :class:`ApiError` to responses,
so tests can drive the same operations from threads without HTTP.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .database import get_database

__all__ = [
    "DECLINED_CARD",
    "ApiError",
    "BadRequest",
    "Conflict",
    "NotFound",
]

# The payment provider's test card that is always declined.
DECLINED_CARD = "4000000000000002"


class ApiError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


def _one(conn: Connection, sql: str, **params: Any) -> dict[str, Any] | None:
    row = conn.execute(text(sql), params).mappings().first()
    return dict(row) if row is not None else None


def _quantity(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("quantity must be a whole number of at least 1")
    return value


def _email(value: Any) -> str:
    if not isinstance(value, str) or "@" not in value.strip():
        raise BadRequest("a valid email is required")
    return value.strip()


# -- users -------------------------------------------------------------------------------


def create_user(name: Any, email: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name is required")
    email = _email(email)
    try:
        with get_database().write() as conn:
            result = conn.execute(
                text("INSERT INTO users (name, email) VALUES (:n, :e)"), {"n": name.strip(), "e": email}
            )
            return {"id": result.lastrowid, "name": name.strip(), "email": email}
    except IntegrityError as exc:
        if "UNIQUE" in str(exc.orig):
            raise Conflict(f"a user with email {email} already exists") from None
        raise


def get_user(user_id: int) -> dict[str, Any]:
    with get_database().read() as conn:
        user = _one(conn, "SELECT id, name, email, created_at FROM users WHERE id = :id", id=user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    return _one(conn, "SELECT id, name, email FROM users WHERE email = :e", e=email)


# -- events ------------------------------------------------------------------------------


def list_events() -> list[dict[str, Any]]:
    with get_database().read() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.slug, e.name, e.starts_at, e.venue, e.capacity, "
                "e.capacity - (SELECT COUNT(*) FROM registrations r WHERE r.event_id = e.id) AS places_left "
                "FROM events e ORDER BY e.starts_at, e.id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def register_for_event(slug: str, email: Any) -> dict[str, Any]:
    email = _email(email)
    with get_database().write() as conn:
        event = _one(conn, "SELECT id, capacity FROM events WHERE slug = :s", s=slug)
        if event is None:
            raise NotFound(f"no event {slug!r}")
        user = _user_by_email(conn, email)
        if user is None:
            raise NotFound(f"no user with email {email}; register an account first")
        try:
            result = conn.execute(
                text("INSERT INTO registrations (user_id, event_id) VALUES (:u, :e)"),
                {"u": user["id"], "e": event["id"]},
            )
        except IntegrityError as exc:
            message = str(exc.orig)
            if "event is full" in message:
                raise Conflict(f"{slug} is full") from None
            if "UNIQUE" in message:
                raise Conflict(f"{email} is already registered for {slug}") from None
            raise
        return {"id": result.lastrowid, "event": slug, "user_id": user["id"]}


# -- products and purchases ----------------------------------------------------------------


def get_product(product_id: str) -> dict[str, Any]:
    with get_database().read() as conn:
        product = _one(conn, "SELECT id, name, price, stock, event_id FROM products WHERE id = :id", id=product_id)
    if product is None:
        raise NotFound(f"no product {product_id!r}")
    return product


def _place_order(conn: Connection, user_id: int | None, items: list[tuple[str, int]]) -> dict[str, Any]:
    """Create an order and its items in the caller's write transaction; 409 when stock is short."""
    priced = []
    for product_id, quantity in items:
        product = _one(conn, "SELECT id, price, stock FROM products WHERE id = :id", id=product_id)
        if product is None:
            raise NotFound(f"no product {product_id!r}")
        if product["stock"] < quantity:
            raise Conflict(f"only {product['stock']} of {product_id} left, {quantity} requested")
        priced.append((product_id, quantity, product["price"]))
    amount = round(sum(q * p for _, q, p in priced), 2)
    order_id = conn.execute(
        text("INSERT INTO orders (user_id, amount) VALUES (:u, :a)"), {"u": user_id, "a": amount}
    ).lastrowid
    try:
        for product_id, quantity, price in priced:
            conn.execute(
                text("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (:o, :p, :q, :u)"),
                {"o": order_id, "p": product_id, "q": quantity, "u": price},
            )
    except IntegrityError as exc:  # the stock CHECK: only reachable if someone bypassed BEGIN IMMEDIATE
        raise Conflict(f"not enough stock: {exc.orig}") from None
    return {"order_id": order_id, "amount": amount, "status": "pending"}


def purchase(product_id: str, quantity: Any, email: Any = None) -> dict[str, Any]:
    """Buy ``quantity`` of one product: one transaction takes the stock and records the order."""
    quantity = _quantity(quantity)
    with get_database().write() as conn:
        user_id = None
        if email is not None:
            user = _user_by_email(conn, _email(email))
            if user is None:
                raise NotFound(f"no user with email {email}")
            user_id = user["id"]
        order = _place_order(conn, user_id, [(product_id, quantity)])
        stock = conn.execute(text("SELECT stock FROM products WHERE id = :id"), {"id": product_id}).scalar()
    return {**order, "product_id": product_id, "quantity": quantity, "remaining_stock": stock}


# -- carts ---------------------------------------------------------------------------------


def create_cart(email: Any = None) -> dict[str, Any]:
    with get_database().write() as conn:
        user_id = None
        if email is not None:
            user = _user_by_email(conn, _email(email))
            if user is None:
                raise NotFound(f"no user with email {email}")
            user_id = user["id"]
        cart_id = conn.execute(text("INSERT INTO carts (user_id) VALUES (:u)"), {"u": user_id}).lastrowid
    return {"id": cart_id, "user_id": user_id, "status": "open", "items": []}


def _open_cart(conn: Connection, cart_id: int) -> dict[str, Any]:
    cart = _one(conn, "SELECT id, user_id, status FROM carts WHERE id = :id", id=cart_id)
    if cart is None:
        raise NotFound(f"no cart {cart_id}")
    if cart["status"] != "open":
        raise Conflict(f"cart {cart_id} was already checked out")
    return cart


def add_to_cart(cart_id: int, product_id: Any, quantity: Any) -> dict[str, Any]:
    quantity = _quantity(quantity)
    with get_database().write() as conn:
        _open_cart(conn, cart_id)
        if _one(conn, "SELECT id FROM products WHERE id = :id", id=product_id) is None:
            raise NotFound(f"no product {product_id!r}")
        conn.execute(
            text(
                "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (:c, :p, :q) "
                "ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = quantity + excluded.quantity"
            ),
            {"c": cart_id, "p": product_id, "q": quantity},
        )
    return get_cart(cart_id)


def get_cart(cart_id: int) -> dict[str, Any]:
    with get_database().read() as conn:
        cart = _one(conn, "SELECT id, user_id, status FROM carts WHERE id = :id", id=cart_id)
        if cart is None:
            raise NotFound(f"no cart {cart_id}")
        items = conn.execute(
            text(
                "SELECT ci.product_id, ci.quantity, p.price FROM cart_items ci "
                "JOIN products p ON p.id = ci.product_id WHERE ci.cart_id = :c ORDER BY ci.id"
            ),
            {"c": cart_id},
        ).mappings()
        cart["items"] = [dict(i) for i in items]
    cart["total"] = round(sum(i["quantity"] * i["price"] for i in cart["items"]), 2)
    return cart


def checkout(cart_id: int) -> dict[str, Any]:
    """Turn a cart into one order: every item is bought, or (409) none is."""
    with get_database().write() as conn:
        cart = _open_cart(conn, cart_id)
        items = conn.execute(
            text("SELECT product_id, quantity FROM cart_items WHERE cart_id = :c ORDER BY id"), {"c": cart_id}
        ).all()
        if not items:
            raise BadRequest(f"cart {cart_id} is empty")
        order = _place_order(conn, cart["user_id"], [(p, q) for p, q in items])
        conn.execute(text("UPDATE carts SET status = 'checked_out' WHERE id = :c"), {"c": cart_id})
    return order


# -- orders, payments and tickets ------------------------------------------------------------


def get_order(order_id: int) -> dict[str, Any]:
    with get_database().read() as conn:
        order = _one(conn, "SELECT id, user_id, amount, status FROM orders WHERE id = :id", id=order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        order["items"] = [
            dict(r)
            for r in conn.execute(
                text("SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = :o ORDER BY id"),
                {"o": order_id},
            ).mappings()
        ]
        order["tickets"] = [
            r[0]
            for r in conn.execute(text("SELECT code FROM tickets WHERE order_id = :o ORDER BY id"), {"o": order_id})
        ]
    return order


def pay_order(order_id: int, card_number: Any, holder_name: Any = "Guest") -> dict[str, Any]:
    """Charge a pending order. Paid: tickets are issued. Declined: the order fails, stock returns."""
    if not isinstance(card_number, str) or not card_number.isdigit():
        raise BadRequest("card_number must be digits")
    with get_database().write() as conn:
        order = _one(conn, "SELECT id, amount, status FROM orders WHERE id = :id", id=order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        if order["status"] != "pending":
            raise Conflict(f"order {order_id} is {order['status']}, not pending")
        declined = card_number == DECLINED_CARD
        status = "declined" if declined else "succeeded"
        conn.execute(
            text("INSERT INTO payments (order_id, amount, status, reference) VALUES (:o, :a, :s, :r)"),
            {"o": order_id, "a": order["amount"], "s": status, "r": f"pay_{secrets.token_hex(8)}"},
        )
        if declined:
            conn.execute(text("UPDATE orders SET status = 'failed' WHERE id = :id"), {"id": order_id})
            return {"order_id": order_id, "payment": status, "status": "failed", "tickets": []}
        conn.execute(text("UPDATE orders SET status = 'paid' WHERE id = :id"), {"id": order_id})
        codes = []
        rows = conn.execute(
            text(
                "SELECT p.event_id, oi.quantity FROM order_items oi JOIN products p ON p.id = oi.product_id "
                "WHERE oi.order_id = :o AND p.event_id IS NOT NULL ORDER BY oi.id"
            ),
            {"o": order_id},
        ).all()
        for event_id, quantity in rows:
            for _ in range(quantity):
                code = f"ALCBF-{secrets.token_hex(4).upper()}"
                conn.execute(
                    text("INSERT INTO tickets (code, order_id, event_id, holder_name) VALUES (:c, :o, :e, :h)"),
                    {"c": code, "o": order_id, "e": event_id, "h": str(holder_name)},
                )
                codes.append(code)
    return {"order_id": order_id, "payment": status, "status": "paid", "tickets": codes}


def get_ticket(code: str) -> dict[str, Any]:
    with get_database().read() as conn:
        ticket = _one(
            conn,
            "SELECT t.code, t.status, t.holder_name, t.order_id, e.slug AS event FROM tickets t "
            "JOIN events e ON e.id = t.event_id WHERE t.code = :c",
            c=code,
        )
    if ticket is None:
        raise NotFound(f"no ticket {code}")
    return ticket


def check_in(code: str) -> dict[str, Any]:
    with get_database().write() as conn:
        ticket = _one(conn, "SELECT status FROM tickets WHERE code = :c", c=code)
        if ticket is None:
            raise NotFound(f"no ticket {code}")
        if ticket["status"] != "valid":
            raise Conflict(f"ticket {code} is {ticket['status']}")
        conn.execute(
            text("UPDATE tickets SET status = 'used', checked_in_at = CURRENT_TIMESTAMP WHERE code = :c"), {"c": code}
        )
    return get_ticket(code)


# -- newsletter and logs ---------------------------------------------------------------------


def subscribe(email: Any) -> dict[str, Any]:
    email = _email(email)
    try:
        with get_database().write() as conn:
            result = conn.execute(text("INSERT INTO newsletter_subscribers (email) VALUES (:e)"), {"e": email})
    except IntegrityError as exc:
        if "UNIQUE" in str(exc.orig):
            raise Conflict(f"{email} is already subscribed") from None
        raise
    return {"id": result.lastrowid, "email": email}


def write_log(message: Any, level: Any = "info") -> dict[str, Any]:
    if not isinstance(message, str) or not message:
        raise BadRequest("message is required")
    if level not in ("debug", "info", "warning", "error"):
        raise BadRequest("level must be debug, info, warning or error")
    with get_database().write() as conn:
        log_id = conn.execute(
            text("INSERT INTO logs (level, message) VALUES (:l, :m)"), {"l": level, "m": message}
        ).lastrowid
    return {"id": log_id, "level": level, "message": message}


def list_logs(level: str | None = None) -> list[dict[str, Any]]:
    with get_database().read() as conn:
        sql = "SELECT id, level, message, timestamp FROM logs"
        params: dict[str, Any] = {}
        if level:
            sql += " WHERE level = :l"
            params["l"] = level
        return [dict(r) for r in conn.execute(text(sql + " ORDER BY id"), params).mappings()]
