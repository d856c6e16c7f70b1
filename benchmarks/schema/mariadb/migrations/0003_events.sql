-- Festival programme: venues, stages, events, artists and performances.

CREATE TABLE venues (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(255) NOT NULL CHECK (name <> ''),
    city       VARCHAR(255) NOT NULL,
    country    VARCHAR(255) NOT NULL CHECK (length(country) = 2),
    capacity   INTEGER NOT NULL CHECK (capacity > 0),
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (name, city)
);

CREATE TABLE stages (
    id       BIGINT AUTO_INCREMENT PRIMARY KEY,
    venue_id BIGINT  NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name     VARCHAR(255) NOT NULL CHECK (name <> ''),
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    UNIQUE (venue_id, name)
);

CREATE TABLE events (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    venue_id    BIGINT  NOT NULL REFERENCES venues (id) ON DELETE RESTRICT,
    name        VARCHAR(255) NOT NULL CHECK (name <> ''),
    slug        VARCHAR(255) NOT NULL UNIQUE CHECK (slug <> ''),
    description TEXT,
    starts_at   DATETIME    NOT NULL,
    ends_at     DATETIME    NOT NULL,
    status      VARCHAR(255) NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'published', 'cancelled', 'completed')),
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (ends_at > starts_at)
);

CREATE TABLE artists (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(255) NOT NULL CHECK (name <> ''),
    slug       VARCHAR(255) NOT NULL UNIQUE CHECK (slug <> ''),
    genre      TEXT,
    country    VARCHAR(255) CHECK (country IS NULL OR length(country) = 2),
    bio        TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE performances (
    id        BIGINT AUTO_INCREMENT PRIMARY KEY,
    event_id  BIGINT  NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    artist_id BIGINT  NOT NULL REFERENCES artists (id) ON DELETE RESTRICT,
    stage_id  BIGINT  NOT NULL REFERENCES stages (id) ON DELETE RESTRICT,
    starts_at DATETIME    NOT NULL,
    ends_at   DATETIME    NOT NULL,
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
