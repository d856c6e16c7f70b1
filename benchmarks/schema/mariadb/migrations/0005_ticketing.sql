-- Ticketing: ticket types per event, issued tickets, registrations and gate check-ins.

CREATE TABLE ticket_types (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_id    BIGINT  NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name        VARCHAR(255) NOT NULL CHECK (name <> ''),
    price       NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
    quota       INTEGER NOT NULL CHECK (quota > 0),
    sold        INTEGER NOT NULL DEFAULT 0,
    sales_start DATETIME,
    sales_end   DATETIME,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (sold >= 0 AND sold <= quota),
    CHECK (sales_end IS NULL OR sales_start IS NULL OR sales_end > sales_start),
    UNIQUE (event_id, name)
);

CREATE TABLE tickets (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    ticket_type_id BIGINT  NOT NULL REFERENCES ticket_types (id) ON DELETE RESTRICT,
    order_id       BIGINT  REFERENCES orders (id) ON DELETE SET NULL,
    holder_name    VARCHAR(255) NOT NULL,
    holder_email   VARCHAR(255) CHECK (holder_email IS NULL OR holder_email LIKE '%_@_%'),
    code           VARCHAR(255) NOT NULL UNIQUE CHECK (length(code) = 12),
    status         VARCHAR(255) NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'used', 'cancelled')),
    created_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE registrations (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_id   BIGINT  NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status     VARCHAR(255) NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'confirmed', 'waitlisted', 'cancelled')),
    note       TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (event_id, user_id)
);

CREATE TABLE check_ins (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    ticket_id     BIGINT  NOT NULL UNIQUE REFERENCES tickets (id) ON DELETE CASCADE,
    staff_user_id BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    gate          VARCHAR(255) NOT NULL,
    checked_in_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_tickets_ticket_type_id ON tickets (ticket_type_id);
CREATE INDEX idx_tickets_order_id ON tickets (order_id);
CREATE INDEX idx_registrations_user_id ON registrations (user_id);
CREATE INDEX idx_check_ins_checked_in_at ON check_ins (checked_in_at);
