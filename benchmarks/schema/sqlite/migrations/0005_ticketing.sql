-- Ticketing: ticket types per event, issued tickets, registrations and gate check-ins.

CREATE TABLE ticket_types (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (name <> ''),
    price       NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
    quota       INTEGER NOT NULL CHECK (quota > 0),
    sold        INTEGER NOT NULL DEFAULT 0,
    sales_start TEXT,
    sales_end   TEXT,
    created_at  TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (sold >= 0 AND sold <= quota),
    CHECK (sales_end IS NULL OR sales_start IS NULL OR sales_end > sales_start),
    UNIQUE (event_id, name)
);

CREATE TABLE tickets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_type_id INTEGER NOT NULL REFERENCES ticket_types (id) ON DELETE RESTRICT,
    order_id       INTEGER REFERENCES orders (id) ON DELETE SET NULL,
    holder_name    TEXT    NOT NULL,
    holder_email   TEXT    CHECK (holder_email IS NULL OR holder_email LIKE '%_@_%'),
    code           TEXT    NOT NULL UNIQUE CHECK (length(code) = 12),
    status         TEXT    NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'used', 'cancelled')),
    created_at     TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE registrations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status     TEXT    NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'confirmed', 'waitlisted', 'cancelled')),
    note       TEXT,
    created_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (event_id, user_id)
);

CREATE TABLE check_ins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id     INTEGER NOT NULL UNIQUE REFERENCES tickets (id) ON DELETE CASCADE,
    staff_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    gate          TEXT    NOT NULL,
    checked_in_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_tickets_ticket_type_id ON tickets (ticket_type_id);
CREATE INDEX idx_tickets_order_id ON tickets (order_id);
CREATE INDEX idx_registrations_user_id ON registrations (user_id);
CREATE INDEX idx_check_ins_checked_in_at ON check_ins (checked_in_at);
