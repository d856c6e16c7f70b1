-- Data every test starts with: the festival's events and its shop.
INSERT INTO events (id, slug, name, starts_at, venue, capacity) VALUES
    (1, 'opening-night', 'Opening Night Social', '2026-05-15T19:00', 'Avalon Ballroom', 300),
    (2, 'salsa-on2-workshop', 'Salsa On2 Workshop', '2026-05-16T11:00', 'Studio A', 3),
    (3, 'rueda-de-casino', 'Rueda de Casino Intensive', '2026-05-16T14:00', 'Studio B', 25);

INSERT INTO products (id, name, price, stock, event_id) VALUES
    ('prod-123', 'Full Festival Pass', 29.99, 100, 1),
    ('prod-456', 'Salsa On2 Workshop Ticket', 15.00, 20, 2),
    ('prod-789', 'Festival T-Shirt', 20.00, 5, NULL);
