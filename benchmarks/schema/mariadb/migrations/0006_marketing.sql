-- Marketing: newsletter subscribers and product reviews.

CREATE TABLE newsletter_subscribers (
    id              BIGINT AUTO_INCREMENT PRIMARY KEY,
    email           VARCHAR(255) NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
    user_id         BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    source          VARCHAR(255) NOT NULL DEFAULT 'footer' CHECK (source IN ('checkout', 'footer', 'event', 'import')),
    confirmed       BOOLEAN NOT NULL DEFAULT FALSE,
    subscribed_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    unsubscribed_at DATETIME,
    CHECK (unsubscribed_at IS NULL OR unsubscribed_at >= subscribed_at)
);

CREATE TABLE reviews (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    product_id BIGINT  NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title      TEXT,
    body       TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (product_id, user_id)
);

CREATE INDEX idx_newsletter_subscribers_email_lower ON newsletter_subscribers (email);  -- case-insensitive collation
CREATE INDEX idx_newsletter_subscribers_user_id ON newsletter_subscribers (user_id);
CREATE INDEX idx_reviews_product_rating ON reviews (product_id, rating);
CREATE INDEX idx_reviews_user_id ON reviews (user_id);
