-- Payments of orders and the tickets a paid order issues.
CREATE TABLE payments (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    amount     REAL NOT NULL CHECK (amount >= 0),
    provider   TEXT NOT NULL DEFAULT 'card',
    status     TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'refunded')),
    reference  TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    event_id    INTEGER NOT NULL REFERENCES events (id),
    holder_name TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'used', 'void')),
    checked_in_at TEXT
);

CREATE INDEX tickets_order ON tickets (order_id);

-- A used ticket stays used.
CREATE TRIGGER tickets_used_is_final BEFORE UPDATE OF status ON tickets
WHEN OLD.status = 'used' AND NEW.status <> 'used'
BEGIN
    SELECT RAISE(ABORT, 'a used ticket cannot change status');
END;
