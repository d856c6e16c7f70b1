-- Commerce: discounts, carts, orders, order items, payments and refunds.

CREATE TABLE discounts (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    code        VARCHAR(255) NOT NULL UNIQUE CHECK (code <> '' AND code = upper(code)),
    kind        VARCHAR(255) NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value       NUMERIC(10, 2) NOT NULL CHECK (value > 0),
    valid_from  DATETIME    NOT NULL,
    valid_until DATETIME,
    max_uses    INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    used_count  INTEGER NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (kind <> 'percent' OR value <= 100),
    CHECK (valid_until IS NULL OR valid_until > valid_from),
    CHECK (max_uses IS NULL OR used_count <= max_uses)
);

CREATE TABLE carts (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    session_id BIGINT  REFERENCES sessions (id) ON DELETE SET NULL,
    status     VARCHAR(255) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'converted', 'abandoned')),
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE cart_items (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    cart_id    BIGINT  NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id BIGINT  NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    variant_id BIGINT  REFERENCES product_variants (id) ON DELETE CASCADE,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (cart_id, product_id, variant_id)
);

CREATE TABLE orders (
    id                  BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id             BIGINT  NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    cart_id             BIGINT  REFERENCES carts (id) ON DELETE SET NULL,
    shipping_address_id BIGINT  REFERENCES addresses (id) ON DELETE SET NULL,
    discount_id         BIGINT  REFERENCES discounts (id) ON DELETE SET NULL,
    status              VARCHAR(255) NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'paid', 'shipped', 'completed', 'cancelled', 'refunded')),
    total               NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    currency            VARCHAR(255) NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3),
    created_at          DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at          DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE order_items (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    order_id   BIGINT  NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id BIGINT  NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    variant_id BIGINT  REFERENCES product_variants (id) ON DELETE SET NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (unit_price >= 0)
);

CREATE TABLE payments (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    order_id   BIGINT  NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    provider   VARCHAR(255) NOT NULL CHECK (provider IN ('card', 'paypal', 'bank_transfer', 'voucher')),
    amount     NUMERIC(10, 2) NOT NULL CHECK (amount > 0),
    status     VARCHAR(255) NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'authorized', 'captured', 'failed', 'refunded')),
    reference  VARCHAR(255) NOT NULL UNIQUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE refunds (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    payment_id BIGINT  NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    amount     NUMERIC(10, 2) NOT NULL CHECK (amount > 0),
    reason     VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_discounts_validity ON discounts (valid_from, valid_until);
CREATE INDEX idx_carts_user_id ON carts (user_id);
CREATE INDEX idx_carts_status_updated ON carts (status, updated_at);
CREATE INDEX idx_cart_items_product_id ON cart_items (product_id);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_status_created ON orders (status, created_at);
CREATE INDEX idx_orders_discount_id ON orders (discount_id);
CREATE INDEX idx_order_items_order_id ON order_items (order_id);
CREATE INDEX idx_order_items_product_id ON order_items (product_id);
CREATE INDEX idx_payments_order_id ON payments (order_id);
CREATE INDEX idx_payments_status ON payments (status);
CREATE INDEX idx_refunds_payment_id ON refunds (payment_id);
