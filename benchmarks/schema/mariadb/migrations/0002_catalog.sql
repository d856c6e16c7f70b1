-- Catalog: categories, products, product variants and the stock ledger.

CREATE TABLE categories (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    parent_id  BIGINT  REFERENCES categories (id) ON DELETE SET NULL,
    name       VARCHAR(255) NOT NULL CHECK (name <> ''),
    slug       VARCHAR(255) NOT NULL UNIQUE CHECK (slug <> ''),
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE products (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    category_id BIGINT  REFERENCES categories (id) ON DELETE SET NULL,
    sku         VARCHAR(255) UNIQUE,
    name        VARCHAR(255) NOT NULL CHECK (name <> ''),
    description TEXT,
    price       NUMERIC(10, 2) NOT NULL DEFAULT 0 CHECK (price >= 0),
    stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    is_active   BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE product_variants (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    product_id  BIGINT  NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    sku         VARCHAR(255) NOT NULL UNIQUE,
    name        VARCHAR(255) NOT NULL CHECK (name <> ''),
    price_delta NUMERIC(10, 2) NOT NULL DEFAULT 0,
    stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (product_id, name)
);

CREATE TABLE stock_movements (
    id         BIGINT AUTO_INCREMENT PRIMARY KEY,
    product_id BIGINT  NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    variant_id BIGINT  REFERENCES product_variants (id) ON DELETE SET NULL,
    quantity   INTEGER NOT NULL CHECK (quantity <> 0),
    reason     VARCHAR(255) NOT NULL CHECK (reason IN ('restock', 'sale', 'cancel', 'return', 'adjustment')),
    reference  TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_categories_parent_id ON categories (parent_id);
CREATE INDEX idx_products_category_id ON products (category_id);
CREATE INDEX idx_products_active_name ON products (is_active, name);
CREATE INDEX idx_product_variants_stock ON product_variants (stock);
CREATE INDEX idx_stock_movements_product_created ON stock_movements (product_id, created_at);
CREATE INDEX idx_stock_movements_variant_id ON stock_movements (variant_id);
