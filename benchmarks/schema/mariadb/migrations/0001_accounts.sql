-- Accounts: roles, users, sessions, addresses, settings, logs and the audit trail.
-- MariaDB/MySQL dialect: timestamps are UTC DATETIME; ids are AUTO_INCREMENT columns; indexed text is VARCHAR(255).

CREATE TABLE roles (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(255) NOT NULL UNIQUE CHECK (name <> ''),
    description TEXT,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE users (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(255) NOT NULL CHECK (name <> ''),
    email         VARCHAR(255) NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
    password_hash TEXT,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    last_login_at DATETIME,
    created_at    DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE user_roles (
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    BIGINT  NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
    granted_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE sessions (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token      VARCHAR(255) NOT NULL UNIQUE CHECK (length(token) >= 16),
    ip_address VARCHAR(45),
    user_agent TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at DATETIME    NOT NULL,
    CHECK (expires_at > created_at)
);

CREATE TABLE addresses (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label       VARCHAR(255) NOT NULL DEFAULT 'home',
    line1       VARCHAR(255) NOT NULL,
    line2       TEXT,
    city        VARCHAR(255) NOT NULL,
    postal_code VARCHAR(255) NOT NULL,
    country     VARCHAR(255) NOT NULL CHECK (length(country) = 2),
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    -- MariaDB has no partial indexes: the unique index on this generated column allows one default per user
    default_for BIGINT  AS (IF(is_default, user_id, NULL)) VIRTUAL,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE settings (
    `key`       VARCHAR(255) PRIMARY KEY CHECK (`key` <> ''),
    value       TEXT NOT NULL,
    description TEXT,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE logs (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    message    VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE audit_logs (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    entity     VARCHAR(255) NOT NULL,
    entity_id  BIGINT  NOT NULL,
    action     VARCHAR(255) NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    details    TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_users_created_at ON users (created_at);
CREATE INDEX idx_user_roles_role_id ON user_roles (role_id);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);
CREATE INDEX idx_sessions_expires_at ON sessions (expires_at);
CREATE INDEX idx_addresses_user_id ON addresses (user_id);
CREATE UNIQUE INDEX uq_addresses_one_default ON addresses (default_for);
CREATE INDEX idx_logs_created_at ON logs (created_at);
CREATE INDEX idx_audit_logs_entity ON audit_logs (entity, entity_id);
CREATE INDEX idx_audit_logs_user_id ON audit_logs (user_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at);
