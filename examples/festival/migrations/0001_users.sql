-- Accounts of the festival site. Emails are unique whatever their case.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(trim(name)) > 0),
    email      TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (email LIKE '%_@_%'),
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
