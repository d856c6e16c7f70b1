-- An alternative seed, used by one test through @pytest.mark.dbscope(seed=...).
INSERT INTO products (id, name, price, stock) VALUES ('prod-123', 'Festival pass', 29.99, 0);
