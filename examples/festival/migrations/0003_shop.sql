-- Products (passes, workshop tickets, merchandise) with stock; carts; orders and their items.
CREATE TABLE products (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    price    REAL NOT NULL CHECK (price >= 0),
    stock    INTEGER NOT NULL CHECK (stock >= 0),
    event_id INTEGER REFERENCES events (id)  -- set for products that are tickets to an event
);

CREATE TABLE carts (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id),
    status     TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out')),
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE cart_items (
    id         INTEGER PRIMARY KEY,
    cart_id    INTEGER NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    UNIQUE (cart_id, product_id)
);

CREATE TABLE orders (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id),  -- NULL for a guest purchase
    amount     REAL NOT NULL CHECK (amount >= 0),
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'paid', 'failed', 'cancelled')),
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE order_items (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL CHECK (unit_price >= 0)
);

CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX orders_user ON orders (user_id);

-- Buying takes the quantity off the product's stock; the CHECK on stock refuses overselling.
CREATE TRIGGER order_items_take_stock AFTER INSERT ON order_items
BEGIN
    UPDATE products SET stock = stock - NEW.quantity WHERE id = NEW.product_id;
END;

-- An order that fails or is cancelled gives its items back to stock.
CREATE TRIGGER orders_release_stock AFTER UPDATE OF status ON orders
WHEN NEW.status IN ('failed', 'cancelled') AND OLD.status NOT IN ('failed', 'cancelled')
BEGIN
    UPDATE products
       SET stock = stock + (SELECT SUM(quantity) FROM order_items
                             WHERE order_id = NEW.id AND product_id = products.id)
     WHERE id IN (SELECT product_id FROM order_items WHERE order_id = NEW.id);
END;
