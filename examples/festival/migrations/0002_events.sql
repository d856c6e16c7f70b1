-- Festival events (workshops, socials, the main nights) and who registered for them.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    slug      TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    venue     TEXT NOT NULL,
    capacity  INTEGER NOT NULL CHECK (capacity > 0)
);

CREATE TABLE registrations (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id      INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    registered_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, event_id)
);

-- An event never takes more registrations than it has places.
CREATE TRIGGER registrations_respect_capacity BEFORE INSERT ON registrations
WHEN (SELECT COUNT(*) FROM registrations WHERE event_id = NEW.event_id)
     >= (SELECT capacity FROM events WHERE id = NEW.event_id)
BEGIN
    SELECT RAISE(ABORT, 'event is full');
END;
