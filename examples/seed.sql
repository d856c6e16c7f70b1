-- Seed data every test starts with.
INSERT INTO products (id, name, price, stock) VALUES ('prod-123', 'Festival pass', 29.99, 100);
INSERT INTO products (id, name, price, stock) VALUES ('prod-456', 'Workshop', 15.00, 20);
