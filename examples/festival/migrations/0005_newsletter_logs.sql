-- Newsletter subscribers (one row per address) and the application log.
CREATE TABLE newsletter_subscribers (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    subscribed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE logs (
    id        INTEGER PRIMARY KEY,
    level     TEXT NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message   TEXT NOT NULL,
    timestamp TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
