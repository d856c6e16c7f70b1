-- Festival programme: venues, stages, events, artists and performances.

CREATE TABLE venues (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL CHECK (name <> ''),
    city       TEXT    NOT NULL,
    country    TEXT    NOT NULL CHECK (length(country) = 2),
    capacity   INTEGER NOT NULL CHECK (capacity > 0),
    created_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (name, city)
);

CREATE TABLE stages (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    venue_id INTEGER NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name     TEXT    NOT NULL CHECK (name <> ''),
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    UNIQUE (venue_id, name)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    venue_id    INTEGER NOT NULL REFERENCES venues (id) ON DELETE RESTRICT,
    name        TEXT    NOT NULL CHECK (name <> ''),
    slug        TEXT    NOT NULL UNIQUE CHECK (slug <> ''),
    description TEXT,
    starts_at   TEXT    NOT NULL,
    ends_at     TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'published', 'cancelled', 'completed')),
    created_at  TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (ends_at > starts_at)
);

CREATE TABLE artists (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL CHECK (name <> ''),
    slug       TEXT    NOT NULL UNIQUE CHECK (slug <> ''),
    genre      TEXT,
    country    TEXT    CHECK (country IS NULL OR length(country) = 2),
    bio        TEXT,
    created_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE performances (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    artist_id INTEGER NOT NULL REFERENCES artists (id) ON DELETE RESTRICT,
    stage_id  INTEGER NOT NULL REFERENCES stages (id) ON DELETE RESTRICT,
    starts_at TEXT    NOT NULL,
    ends_at   TEXT    NOT NULL,
    CHECK (ends_at > starts_at),
    UNIQUE (stage_id, starts_at)
);

CREATE INDEX idx_venues_country_city ON venues (country, city);
CREATE INDEX idx_events_venue_id ON events (venue_id);
CREATE INDEX idx_events_starts_at ON events (starts_at);
CREATE INDEX idx_events_status ON events (status);
CREATE INDEX idx_artists_name ON artists (name);
CREATE INDEX idx_performances_event_id ON performances (event_id);
CREATE INDEX idx_performances_artist_id ON performances (artist_id);
