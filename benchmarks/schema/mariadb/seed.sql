-- Seed data for the dbscope benchmark schema, written by ../generate_seed.py (edit that,
-- not this file). The SQLite and PostgreSQL seeds hold the same rows. Ids are not given:
-- they are assigned 1, 2, 3, ... in insert order.
-- Inserts fire the triggers, which add audit_logs and stock_movements rows, book stock and
-- ticket sales and mark paid orders; all timestamps are fixed so the result is deterministic.
-- 29 tables, 235 rows.

INSERT INTO roles (name, description, created_at) VALUES
    ('admin', 'Full access to the back office', '2024-01-01 00:00:00'),
    ('staff', 'Box office and gate staff', '2024-01-01 00:00:00'),
    ('customer', 'Buys tickets and merchandise', '2024-01-01 00:00:00'),
    ('artist_manager', 'Manages artist bookings and guest lists', '2024-01-01 00:00:00');

INSERT INTO users (name, email, password_hash, is_active, last_login_at, created_at, updated_at) VALUES
    ('Alice Jansen', 'alice.jansen@example.com', 'pbkdf2_sha256$600000$67e0e2a6dbdbda3c$f15b8960ddfb356a63583dbf27256f90d3fa7e84c7a', TRUE, '2024-04-01 08:00:00', '2024-01-02 09:00:00', '2024-01-02 09:00:00'),
    ('Bram de Vries', 'bram.de.vries@example.com', 'pbkdf2_sha256$600000$1277ee61741eea9d$92fc45c57605d01c257ce5232408a0fc2f3eaff1ceb', TRUE, '2024-04-01 13:07:00', '2024-01-02 16:00:00', '2024-01-02 16:00:00'),
    ('Chloe Martin', 'chloe.martin@example.com', 'pbkdf2_sha256$600000$61bd3a18caf36f18$173b546df60ec5d77c26a54116b9358a4e2d7ba5ff5', TRUE, '2024-04-01 18:14:00', '2024-01-02 23:00:00', '2024-01-02 23:00:00'),
    ('Daan Bakker', 'daan.bakker@example.com', 'pbkdf2_sha256$600000$1b7d4ab2af00fba8$d435d37aa5b28c505f1145dc928dece944fe8eebda7', TRUE, '2024-04-01 23:21:00', '2024-01-03 06:00:00', '2024-01-03 06:00:00'),
    ('Eva Novak', 'eva.novak@example.com', 'pbkdf2_sha256$600000$78faa212ec98fbb1$bcdbbe0cb25e862b8e4b26edbcfd69bdaa264e23724', TRUE, '2024-04-02 04:28:00', '2024-01-03 13:00:00', '2024-01-03 13:00:00'),
    ('Finn OBrien', 'finn.obrien@example.com', 'pbkdf2_sha256$600000$df76bb95c7c1ed5f$0ea1640cfeda66ac00755b59db7ddd8120b042a89f7', TRUE, '2024-04-02 09:35:00', '2024-01-03 20:00:00', '2024-01-03 20:00:00'),
    ('Greta Lindqvist', 'greta.lindqvist@example.com', 'pbkdf2_sha256$600000$9d95f074dfcdc882$ca87d19dfa534f006a4a7435aafa7df2c19557a0721', TRUE, '2024-04-02 14:42:00', '2024-01-04 03:00:00', '2024-01-04 03:00:00'),
    ('Hugo Moreau', 'hugo.moreau@example.com', 'pbkdf2_sha256$600000$e8ee8a4ca43d891f$64c3661d5142f213c5514142f1c343a609b5c50954d', TRUE, '2024-04-02 19:49:00', '2024-01-04 10:00:00', '2024-01-04 10:00:00'),
    ('Ines Costa', 'ines.costa@example.com', 'pbkdf2_sha256$600000$c05b9280ab589278$fa82b9c6f24a66a7eeea3c2de79997c3afdaf32302d', TRUE, '2024-04-03 00:56:00', '2024-01-04 17:00:00', '2024-01-04 17:00:00'),
    ('Jonas Weber', 'jonas.weber@example.com', 'pbkdf2_sha256$600000$e89af8e8fa086c05$dd9e2276fef68188cfaefaca208ca0bcd3e1383571b', TRUE, '2024-04-03 06:03:00', '2024-01-05 00:00:00', '2024-01-05 00:00:00'),
    ('Katja Horvat', 'katja.horvat@example.com', 'pbkdf2_sha256$600000$d625baf0c541847e$3c3646d97038756fadfa679a905072e1c7e196199f4', TRUE, NULL, '2024-01-05 07:00:00', '2024-01-05 07:00:00'),
    ('Lars Nielsen', 'lars.nielsen@example.com', 'pbkdf2_sha256$600000$c7d6661be7d3f228$bbad9faf6c8f2bc906432b4449d1d79e0597cd1f010', TRUE, NULL, '2024-01-05 14:00:00', '2024-01-05 14:00:00'),
    ('Maya Patel', 'maya.patel@example.com', 'pbkdf2_sha256$600000$c2658f4b5919e942$884df9d549b57db3738431c57851a3ae98783d6cb68', TRUE, NULL, '2024-01-05 21:00:00', '2024-01-05 21:00:00'),
    ('Noah Schmidt', 'noah.schmidt@example.com', 'pbkdf2_sha256$600000$a45172b908e7d51d$9bbe4b416153dbe5011c7c81dfdd36588c712f72fbb', TRUE, NULL, '2024-01-06 04:00:00', '2024-01-06 04:00:00'),
    ('Olivia Rossi', 'olivia.rossi@example.com', 'pbkdf2_sha256$600000$e5900fbc33e2462e$ad90730adb2ecf92b815389fad9601fc055c473396f', TRUE, NULL, '2024-01-06 11:00:00', '2024-01-06 11:00:00'),
    ('Pieter Visser', 'pieter.visser@example.com', 'pbkdf2_sha256$600000$2732883e48fc0609$294c8c18f291bf6c5794cfa22b6392bb0c5ef30127b', FALSE, NULL, '2024-01-06 18:00:00', '2024-01-06 18:00:00');

INSERT INTO user_roles (user_id, role_id, granted_at) VALUES
    (1, 1, '2024-01-02 09:00:00'),
    (2, 2, '2024-01-02 16:00:00'),
    (1, 3, '2024-01-02 09:00:00'),
    (2, 3, '2024-01-02 16:00:00'),
    (3, 3, '2024-01-02 23:00:00'),
    (4, 3, '2024-01-03 06:00:00'),
    (5, 3, '2024-01-03 13:00:00'),
    (6, 3, '2024-01-03 20:00:00'),
    (7, 3, '2024-01-04 03:00:00'),
    (8, 3, '2024-01-04 10:00:00'),
    (9, 3, '2024-01-04 17:00:00'),
    (10, 3, '2024-01-05 00:00:00'),
    (11, 3, '2024-01-05 07:00:00'),
    (12, 3, '2024-01-05 14:00:00'),
    (13, 3, '2024-01-05 21:00:00'),
    (14, 3, '2024-01-06 04:00:00'),
    (15, 3, '2024-01-06 11:00:00'),
    (16, 3, '2024-01-06 18:00:00');

INSERT INTO sessions (user_id, token, ip_address, user_agent, created_at, expires_at) VALUES
    (1, '84097828fc31a8c8d29210df48901a85de7fd013f686b17be77d1be29cb7a98b', '192.0.2.10', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0', '2024-04-01 08:00:00', '2024-05-01 08:00:00'),
    (2, '5d9061408048c12d053925aed45333a142997f26a2cd1e0c4a87678c53a1e3ae', '192.0.2.11', 'Mozilla/5.0 (Macintosh) Safari/17.4', '2024-04-01 13:07:00', '2024-05-01 13:07:00'),
    (3, 'eb278475f606714397df8cb657e1c7ee252f4c85e62e2cb65c5fea66b2ec4fb0', '192.0.2.12', 'Mozilla/5.0 (Windows NT 10.0) Chrome/123.0', '2024-04-01 18:14:00', '2024-05-01 18:14:00'),
    (4, 'e1cdfcfb8292183130a3c977a5fd646fc16a3dd1e1d9d90d99f555b736b3260e', '192.0.2.13', 'Mozilla/5.0 (iPhone) Mobile Safari/17.4', '2024-04-01 23:21:00', '2024-05-01 23:21:00'),
    (5, 'd7b2fab495bd092aed57a1cc49972141a4149ff3f7e7b936a153d4d80e069545', '192.0.2.14', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0', '2024-04-02 04:28:00', '2024-05-02 04:28:00'),
    (6, '977ee55f21e49dd392178f9f39af6fb366404762e2a07be5b36388f49ef49797', '192.0.2.15', 'Mozilla/5.0 (Macintosh) Safari/17.4', '2024-04-02 09:35:00', '2024-05-02 09:35:00'),
    (7, 'cef8bce549cdc050cb3da30f5672426b30b651a926d1a77f71bacc1b3bb45b81', '192.0.2.16', 'Mozilla/5.0 (Windows NT 10.0) Chrome/123.0', '2024-04-02 14:42:00', '2024-05-02 14:42:00'),
    (8, '50d71bf29b367e63005759d7f5307419fa5ca59ef01d1efd430d63ab1e5fff91', '192.0.2.17', 'Mozilla/5.0 (iPhone) Mobile Safari/17.4', '2024-04-02 19:49:00', '2024-05-02 19:49:00');

INSERT INTO addresses (user_id, label, line1, line2, city, postal_code, country, is_default, created_at, updated_at) VALUES
    (1, 'home', '12 Main Street', NULL, 'Utrecht', '3511 AB', 'NL', TRUE, '2024-01-02 09:10:00', '2024-01-02 09:10:00'),
    (2, 'home', '15 Main Street', NULL, 'Amsterdam', '1012 JS', 'NL', TRUE, '2024-01-02 16:10:00', '2024-01-02 16:10:00'),
    (3, 'home', '18 Main Street', NULL, 'Lyon', '69002', 'FR', TRUE, '2024-01-02 23:10:00', '2024-01-02 23:10:00'),
    (4, 'home', '21 Main Street', NULL, 'Ghent', '9000', 'BE', TRUE, '2024-01-03 06:10:00', '2024-01-03 06:10:00'),
    (5, 'home', '24 Main Street', NULL, 'Porto', '4050-001', 'PT', TRUE, '2024-01-03 13:10:00', '2024-01-03 13:10:00'),
    (6, 'home', '27 Main Street', NULL, 'Vienna', '1010', 'AT', TRUE, '2024-01-03 20:10:00', '2024-01-03 20:10:00'),
    (7, 'home', '30 Main Street', NULL, 'Copenhagen', '1050', 'DK', TRUE, '2024-01-04 03:10:00', '2024-01-04 03:10:00'),
    (8, 'home', '33 Main Street', NULL, 'Krakow', '31-001', 'PL', TRUE, '2024-01-04 10:10:00', '2024-01-04 10:10:00'),
    (1, 'work', '101 Canal Road', 'Floor 3', 'Rotterdam', '3011 AA', 'NL', FALSE, '2024-01-04 09:00:00', '2024-01-04 09:00:00'),
    (2, 'work', '102 Canal Road', 'Floor 3', 'Rotterdam', '3011 AA', 'NL', FALSE, '2024-01-04 16:00:00', '2024-01-04 16:00:00');

INSERT INTO settings (`key`, value, description, updated_at) VALUES
    ('site.name', 'Sunfield Festival Shop', 'Shown in page titles and emails', '2024-01-01 00:00:00'),
    ('site.default_currency', 'EUR', 'ISO 4217 currency for new orders', '2024-01-01 00:00:00'),
    ('site.timezone', 'Europe/Amsterdam', 'Time zone used to display event times', '2024-01-01 00:00:00'),
    ('inventory.low_stock_threshold', '10', 'Products at or below this stock are flagged', '2024-01-01 00:00:00'),
    ('checkout.max_items_per_order', '20', 'Upper limit of units in one order', '2024-01-01 00:00:00'),
    ('checkout.cart_ttl_hours', '72', 'Open carts are abandoned after this many hours', '2024-01-01 00:00:00'),
    ('tickets.max_per_order', '6', 'Tickets of one type per order', '2024-01-01 00:00:00'),
    ('tickets.code_length', '12', 'Length of generated ticket codes', '2024-01-01 00:00:00'),
    ('mail.from_address', 'tickets@example.org', 'Sender of order and ticket emails', '2024-01-01 00:00:00'),
    ('mail.support_address', 'support@example.org', 'Reply-to address', '2024-01-01 00:00:00'),
    ('legal.terms_of_sale', '1. Scope. These terms apply to all ticket and merchandise sales made through this shop. 2. Tickets. A ticket gives access to the event, day and area printed on it. Each ticket code can be scanned once; copies are refused at the gate. Tickets are personal and may be transferred to another holder only through the shop before the sales end date. 3. Prices. All prices include VAT. Service fees are shown before payment. 4. Payment. Orders are confirmed once the payment has been captured. Unpaid orders are cancelled after 24 hours and their items are returned to stock. 5. Refunds. Merchandise may be returned unused within 14 days. Tickets are refunded only when an event is cancelled; partial refunds are made to the original payment method. 6. Programme changes. The line-up and running order may change without notice. 7. Liability. The organiser is not liable for loss of or damage to personal property. 8. Privacy. Personal data is processed as described in the privacy notice.', 'Terms of sale shown at checkout', '2024-01-01 00:00:00'),
    ('legal.privacy_notice', 'We store your name, email address, order history and, for tickets, the holder name so that the ticket can be checked at the gate. Payment details are handled by the payment provider and never stored by us. Newsletter subscriptions require a confirmed opt-in and can be cancelled from every message. Audit records of orders and payments are kept for seven years to meet accounting rules; all other data is deleted two years after your last order.', 'Privacy notice linked from every page', '2024-01-01 00:00:00');

INSERT INTO logs (message, created_at) VALUES
    ('seed: accounts imported', '2024-01-05 06:00:00'),
    ('seed: catalog imported', '2024-01-20 06:00:00'),
    ('seed: programme published', '2024-02-15 06:00:00'),
    ('maintenance: nightly cart cleanup finished', '2024-03-20 03:00:00');

INSERT INTO venues (name, city, country, capacity, created_at, updated_at) VALUES
    ('Sunfield Park', 'Utrecht', 'NL', 25000, '2024-01-10 10:00:00', '2024-01-10 10:00:00'),
    ('Harbour Hall', 'Rotterdam', 'NL', 4000, '2024-01-10 10:05:00', '2024-01-10 10:05:00'),
    ('Riverside Arena', 'Ghent', 'BE', 8000, '2024-01-10 10:10:00', '2024-01-10 10:10:00');

INSERT INTO stages (venue_id, name, capacity) VALUES
    (1, 'Main Stage', 15000),
    (1, 'Forest Stage', 6000),
    (2, 'Hall A', 2500),
    (2, 'Hall B', 1500),
    (3, 'Arena', 7000),
    (3, 'Club', 800);

INSERT INTO events (venue_id, name, slug, description, starts_at, ends_at, status, created_at, updated_at) VALUES
    (1, 'Sunfield Festival 2024', 'sunfield-festival-2024', 'Three days of music in the park.', '2024-07-12 14:00:00', '2024-07-14 23:30:00', 'published', '2024-01-12 09:00:00', '2024-01-12 09:00:00'),
    (2, 'Harbour Jazz Nights', 'harbour-jazz-nights-2024', 'Two evenings of jazz by the water.', '2024-06-21 19:00:00', '2024-06-22 23:00:00', 'published', '2024-01-12 10:00:00', '2024-01-12 10:00:00'),
    (3, 'Riverside Electronic', 'riverside-electronic-2024', 'An all-night electronic programme.', '2024-09-06 20:00:00', '2024-09-07 04:00:00', 'published', '2024-01-12 11:00:00', '2024-01-12 11:00:00'),
    (1, 'Sunfield Winter Sessions', 'sunfield-winter-sessions-2024', 'Acoustic sets, programme to follow.', '2024-12-14 16:00:00', '2024-12-14 23:00:00', 'draft', '2024-01-12 12:00:00', '2024-01-12 12:00:00');

INSERT INTO artists (name, slug, genre, country, bio, created_at, updated_at) VALUES
    ('The Paper Lanterns', 'the-paper-lanterns', 'indie', 'GB', 'The Paper Lanterns play indie and are touring Europe in 2024.', '2024-01-15 11:00:00', '2024-01-15 11:00:00'),
    ('Mira Kovac', 'mira-kovac', 'electronic', 'HR', 'Mira Kovac play electronic and are touring Europe in 2024.', '2024-01-15 11:10:00', '2024-01-15 11:10:00'),
    ('Low Tide Orchestra', 'low-tide-orchestra', 'jazz', 'NL', 'Low Tide Orchestra play jazz and are touring Europe in 2024.', '2024-01-15 11:20:00', '2024-01-15 11:20:00'),
    ('Juno and the Owls', 'juno-and-the-owls', 'folk', 'IE', 'Juno and the Owls play folk and are touring Europe in 2024.', '2024-01-15 11:30:00', '2024-01-15 11:30:00'),
    ('Static Bloom', 'static-bloom', 'electronic', 'DE', 'Static Bloom play electronic and are touring Europe in 2024.', '2024-01-15 11:40:00', '2024-01-15 11:40:00'),
    ('Kofi Mensah Quartet', 'kofi-mensah-quartet', 'jazz', 'GH', 'Kofi Mensah Quartet play jazz and are touring Europe in 2024.', '2024-01-15 11:50:00', '2024-01-15 11:50:00'),
    ('Neon Harvest', 'neon-harvest', 'pop', 'SE', 'Neon Harvest play pop and are touring Europe in 2024.', '2024-01-15 12:00:00', '2024-01-15 12:00:00'),
    ('Ana Ribeiro', 'ana-ribeiro', 'singer-songwriter', 'PT', 'Ana Ribeiro play singer-songwriter and are touring Europe in 2024.', '2024-01-15 12:10:00', '2024-01-15 12:10:00');

INSERT INTO performances (event_id, artist_id, stage_id, starts_at, ends_at) VALUES
    (1, 1, 1, '2024-07-12 18:00:00', '2024-07-12 19:15:00'),
    (1, 7, 1, '2024-07-12 21:00:00', '2024-07-12 22:30:00'),
    (1, 4, 2, '2024-07-13 15:00:00', '2024-07-13 16:00:00'),
    (1, 8, 2, '2024-07-13 17:00:00', '2024-07-13 18:00:00'),
    (1, 2, 1, '2024-07-14 22:00:00', '2024-07-14 23:30:00'),
    (2, 3, 3, '2024-06-21 20:00:00', '2024-06-21 21:30:00'),
    (2, 6, 4, '2024-06-21 21:30:00', '2024-06-21 22:45:00'),
    (2, 3, 3, '2024-06-22 20:00:00', '2024-06-22 21:30:00'),
    (3, 5, 5, '2024-09-06 22:00:00', '2024-09-07 00:00:00'),
    (3, 2, 5, '2024-09-07 00:30:00', '2024-09-07 02:30:00'),
    (3, 5, 6, '2024-09-06 20:30:00', '2024-09-06 21:30:00'),
    (4, 8, 1, '2024-12-14 19:00:00', '2024-12-14 20:00:00');

INSERT INTO categories (parent_id, name, slug, created_at) VALUES
    (NULL, 'Merchandise', 'merchandise', '2024-01-20 09:00:00'),
    (1, 'Apparel', 'apparel', '2024-01-20 09:01:00'),
    (1, 'Accessories', 'accessories', '2024-01-20 09:02:00'),
    (1, 'Music', 'music', '2024-01-20 09:03:00'),
    (NULL, 'Food and Drink', 'food-and-drink', '2024-01-20 09:04:00');

INSERT INTO products (category_id, sku, name, description, price, stock, is_active, created_at, updated_at) VALUES
    (2, 'TSHIRT-24', 'Festival T-Shirt 2024', 'Festival T-Shirt 2024. Official Sunfield merchandise.', 25.00, 170, TRUE, '2024-01-20 10:01:00', '2024-01-20 10:01:00'),
    (2, 'HOODIE-24', 'Festival Hoodie 2024', 'Festival Hoodie 2024. Official Sunfield merchandise.', 49.00, 75, TRUE, '2024-01-20 10:02:00', '2024-01-20 10:02:00'),
    (3, 'PONCHO', 'Rain Poncho', 'Rain Poncho. Official Sunfield merchandise.', 6.50, 300, TRUE, '2024-01-20 10:03:00', '2024-01-20 10:03:00'),
    (3, 'TOTE-24', 'Tote Bag', 'Tote Bag. Official Sunfield merchandise.', 12.00, 115, TRUE, '2024-01-20 10:04:00', '2024-01-20 10:04:00'),
    (3, 'PINSET-24', 'Enamel Pin Set', 'Enamel Pin Set. Official Sunfield merchandise.', 9.50, 120, TRUE, '2024-01-20 10:05:00', '2024-01-20 10:05:00'),
    (5, 'CUP-RE', 'Reusable Cup', 'Reusable Cup. Official Sunfield merchandise.', 3.00, 1000, TRUE, '2024-01-20 10:06:00', '2024-01-20 10:06:00'),
    (4, 'LP-LIVE23', 'Vinyl: Live at Sunfield 2023', 'Vinyl: Live at Sunfield 2023. Official Sunfield merchandise.', 29.99, 8, TRUE, '2024-01-20 10:07:00', '2024-01-20 10:07:00'),
    (4, 'CD-COMP24', 'Compilation CD 2024', 'Compilation CD 2024. Official Sunfield merchandise.', 14.99, 60, TRUE, '2024-01-20 10:08:00', '2024-01-20 10:08:00'),
    (2, 'BUCKET-24', 'Bucket Hat', 'Bucket Hat. Official Sunfield merchandise.', 19.00, 55, TRUE, '2024-01-20 10:09:00', '2024-01-20 10:09:00'),
    (5, 'BOTTLE-SS', 'Steel Water Bottle', 'Steel Water Bottle. Official Sunfield merchandise.', 15.00, 80, TRUE, '2024-01-20 10:10:00', '2024-01-20 10:10:00'),
    (1, 'POSTER-23', 'Poster 2023 Edition', 'Poster 2023 Edition. Official Sunfield merchandise.', 10.00, 5, FALSE, '2024-01-20 10:11:00', '2024-01-20 10:11:00'),
    (3, 'EARPLUGS', 'Musician Earplugs', 'Musician Earplugs. Official Sunfield merchandise.', 4.50, 200, TRUE, '2024-01-20 10:12:00', '2024-01-20 10:12:00');

INSERT INTO product_variants (product_id, sku, name, price_delta, stock, created_at, updated_at) VALUES
    (1, 'TSHIRT-24-S', 'S', 0.00, 40, '2024-01-20 11:00:00', '2024-01-20 11:00:00'),
    (1, 'TSHIRT-24-M', 'M', 0.00, 60, '2024-01-20 11:01:00', '2024-01-20 11:01:00'),
    (1, 'TSHIRT-24-L', 'L', 0.00, 50, '2024-01-20 11:02:00', '2024-01-20 11:02:00'),
    (1, 'TSHIRT-24-XL', 'XL', 2.00, 20, '2024-01-20 11:03:00', '2024-01-20 11:03:00'),
    (2, 'HOODIE-24-S', 'S', 0.00, 15, '2024-01-20 11:04:00', '2024-01-20 11:04:00'),
    (2, 'HOODIE-24-M', 'M', 0.00, 25, '2024-01-20 11:05:00', '2024-01-20 11:05:00'),
    (2, 'HOODIE-24-L', 'L', 0.00, 25, '2024-01-20 11:06:00', '2024-01-20 11:06:00'),
    (2, 'HOODIE-24-XL', 'XL', 3.00, 10, '2024-01-20 11:07:00', '2024-01-20 11:07:00'),
    (4, 'TOTE-24-NATURAL', 'Natural', 0.00, 70, '2024-01-20 11:08:00', '2024-01-20 11:08:00'),
    (4, 'TOTE-24-BLACK', 'Black', 0.00, 45, '2024-01-20 11:09:00', '2024-01-20 11:09:00'),
    (9, 'BUCKET-24-SM', 'S/M', 0.00, 30, '2024-01-20 11:10:00', '2024-01-20 11:10:00'),
    (9, 'BUCKET-24-LXL', 'L/XL', 0.00, 25, '2024-01-20 11:11:00', '2024-01-20 11:11:00');

INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at) VALUES
    (3, NULL, 200, 'restock', 'PO-2024-101', '2024-02-05 08:00:00'),
    (6, NULL, 500, 'restock', 'PO-2024-102', '2024-02-06 08:00:00'),
    (8, NULL, 25, 'restock', 'PO-2024-103', '2024-02-07 08:00:00'),
    (1, 2, 40, 'restock', 'PO-2024-104', '2024-02-08 08:00:00'),
    (2, 7, 20, 'restock', 'PO-2024-105', '2024-02-09 08:00:00'),
    (10, NULL, 40, 'restock', 'PO-2024-106', '2024-02-10 08:00:00');

INSERT INTO discounts (code, kind, value, valid_from, valid_until, max_uses, created_at, updated_at) VALUES
    ('EARLYBIRD10', 'percent', 10.00, '2024-01-01 00:00:00', '2024-04-01 00:00:00', 200, '2024-01-01 06:00:00', '2024-01-01 06:00:00'),
    ('WELCOME5', 'fixed', 5.00, '2024-01-01 00:00:00', NULL, NULL, '2024-01-01 06:00:00', '2024-01-01 06:00:00'),
    ('CREW20', 'percent', 20.00, '2024-01-01 00:00:00', '2024-12-31 23:59:59', 25, '2024-01-01 06:00:00', '2024-01-01 06:00:00');

INSERT INTO carts (user_id, session_id, status, created_at, updated_at) VALUES
    (1, 1, 'converted', '2024-03-09 18:00:00', '2024-03-09 18:20:00'),
    (2, 2, 'converted', '2024-03-10 18:13:00', '2024-03-10 18:33:00'),
    (3, 3, 'converted', '2024-03-11 18:26:00', '2024-03-11 18:46:00'),
    (4, 4, 'open', '2024-03-12 18:39:00', '2024-03-12 18:59:00'),
    (5, 5, 'abandoned', '2024-03-13 18:52:00', '2024-03-13 19:12:00');

INSERT INTO cart_items (cart_id, product_id, variant_id, quantity, added_at) VALUES
    (1, 1, 2, 2, '2024-03-09 18:01:00'),
    (1, 3, NULL, 1, '2024-03-09 18:02:00'),
    (2, 2, 7, 1, '2024-03-10 18:16:00'),
    (2, 7, NULL, 1, '2024-03-10 18:17:00'),
    (3, 6, NULL, 4, '2024-03-11 18:31:00'),
    (4, 9, 11, 1, '2024-03-12 18:45:00'),
    (4, 12, NULL, 2, '2024-03-12 18:46:00'),
    (5, 8, NULL, 1, '2024-03-13 19:00:00');

INSERT INTO orders (user_id, cart_id, shipping_address_id, discount_id, status, total, currency, created_at, updated_at) VALUES
    (1, 1, 1, NULL, 'pending', 444.00, 'EUR', '2024-03-10 12:00:00', '2024-03-10 12:00:00'),
    (2, 2, 2, 1, 'pending', 241.19, 'EUR', '2024-03-13 12:17:00', '2024-03-13 12:17:00'),
    (3, 3, 3, NULL, 'pending', 111.00, 'EUR', '2024-03-16 12:34:00', '2024-03-16 12:34:00'),
    (4, NULL, 4, NULL, 'pending', 101.00, 'EUR', '2024-03-19 12:51:00', '2024-03-19 12:51:00'),
    (5, NULL, 5, 2, 'pending', 217.99, 'EUR', '2024-03-22 13:08:00', '2024-03-22 13:08:00'),
    (6, NULL, 6, NULL, 'pending', 54.50, 'EUR', '2024-03-25 13:25:00', '2024-03-25 13:25:00'),
    (7, NULL, 7, NULL, 'pending', 100.50, 'EUR', '2024-03-28 13:42:00', '2024-03-28 13:42:00'),
    (8, NULL, 8, NULL, 'pending', 29.99, 'EUR', '2024-03-31 13:59:00', '2024-03-31 13:59:00'),
    (3, NULL, 3, 3, 'pending', 110.40, 'EUR', '2024-04-03 14:16:00', '2024-04-03 14:16:00'),
    (1, NULL, 1, NULL, 'pending', 24.00, 'EUR', '2024-04-06 14:33:00', '2024-04-06 14:33:00');

INSERT INTO order_items (order_id, product_id, variant_id, quantity, unit_price) VALUES
    (1, 1, 2, 2, 25.00),
    (1, 3, NULL, 1, 6.50),
    (1, 5, NULL, 1, 9.50),
    (2, 2, 7, 1, 49.00),
    (2, 7, NULL, 1, 29.99),
    (3, 6, NULL, 4, 3.00),
    (3, 12, NULL, 2, 4.50),
    (4, 4, 10, 1, 12.00),
    (5, 9, 12, 1, 19.00),
    (5, 8, NULL, 1, 14.99),
    (6, 10, NULL, 1, 15.00),
    (7, 1, 4, 1, 27.00),
    (7, 12, NULL, 1, 4.50),
    (8, 7, NULL, 1, 29.99),
    (9, 2, 6, 1, 49.00),
    (10, 4, 9, 2, 12.00);

INSERT INTO payments (order_id, provider, amount, status, reference, created_at) VALUES
    (1, 'card', 444.00, 'captured', 'PAY-A9B61B68F0', '2024-03-10 12:04:00'),
    (2, 'paypal', 241.19, 'captured', 'PAY-8734CA0C7E', '2024-03-13 12:22:00'),
    (3, 'card', 111.00, 'captured', 'PAY-F8C7D84C26', '2024-03-16 12:40:00'),
    (4, 'bank_transfer', 101.00, 'captured', 'PAY-FF76615169', '2024-03-19 12:58:00'),
    (5, 'card', 217.99, 'captured', 'PAY-D1B34D02F5', '2024-03-22 13:16:00'),
    (6, 'voucher', 54.50, 'captured', 'PAY-0462018D8E', '2024-03-25 13:34:00'),
    (7, 'card', 100.50, 'captured', 'PAY-522D724AE7', '2024-03-28 13:52:00'),
    (8, 'card', 29.99, 'failed', 'PAY-09916720D6', '2024-03-31 14:10:00'),
    (9, 'card', 110.40, 'authorized', 'PAY-C097FCE7AD', '2024-04-03 14:28:00');

INSERT INTO refunds (payment_id, amount, reason, created_at) VALUES
    (1, 6.50, 'Rain poncho returned unused', '2024-03-15 12:00:00'),
    (3, 6.00, 'Two reusable cups arrived damaged', '2024-03-20 12:34:00');

INSERT INTO ticket_types (event_id, name, price, quota, sales_start, sales_end, created_at, updated_at) VALUES
    (1, 'Weekend Pass', 189.00, 20000, '2024-02-01 10:00:00', '2024-07-12 14:00:00', '2024-01-25 12:00:00', '2024-01-25 12:00:00'),
    (1, 'Day Ticket Saturday', 89.00, 5000, '2024-02-01 10:00:00', '2024-07-12 14:00:00', '2024-01-25 12:01:00', '2024-01-25 12:01:00'),
    (2, 'Evening Pass', 45.00, 2000, '2024-02-01 10:00:00', '2024-06-21 19:00:00', '2024-01-25 12:02:00', '2024-01-25 12:02:00'),
    (2, 'Two-Night Pass', 80.00, 800, '2024-02-01 10:00:00', '2024-06-21 19:00:00', '2024-01-25 12:03:00', '2024-01-25 12:03:00'),
    (3, 'Night Ticket', 39.50, 7000, '2024-02-01 10:00:00', '2024-09-06 20:00:00', '2024-01-25 12:04:00', '2024-01-25 12:04:00'),
    (3, 'Early Entry', 29.50, 500, '2024-02-01 10:00:00', '2024-09-06 20:00:00', '2024-01-25 12:05:00', '2024-01-25 12:05:00'),
    (4, 'Standard', 35.00, 3000, '2024-02-01 10:00:00', '2024-12-14 16:00:00', '2024-01-25 12:06:00', '2024-01-25 12:06:00'),
    (4, 'Supporter', 60.00, 100, '2024-02-01 10:00:00', '2024-12-14 16:00:00', '2024-01-25 12:07:00', '2024-01-25 12:07:00');

INSERT INTO tickets (ticket_type_id, order_id, holder_name, holder_email, code, status, created_at) VALUES
    (1, 1, 'Alice Jansen', 'alice.jansen@example.com', '737CE60FCCF9', 'valid', '2024-03-10 12:01:00'),
    (1, 1, 'Katja Horvat', 'katja.horvat@example.com', '7C1696C142C8', 'valid', '2024-03-10 12:02:00'),
    (1, 2, 'Bram de Vries', 'bram.de.vries@example.com', 'E2DEE88DF546', 'valid', '2024-03-13 12:18:00'),
    (3, 3, 'Chloe Martin', 'chloe.martin@example.com', 'F7FF995951D4', 'valid', '2024-03-16 12:35:00'),
    (3, 3, 'Maya Patel', 'maya.patel@example.com', 'DA5190B28778', 'valid', '2024-03-16 12:36:00'),
    (2, 4, 'Daan Bakker', 'daan.bakker@example.com', '8C97A7C10F19', 'valid', '2024-03-19 12:52:00'),
    (1, 5, 'Eva Novak', 'eva.novak@example.com', '2B4E48307BDC', 'valid', '2024-03-22 13:09:00'),
    (5, 6, 'Finn OBrien', 'finn.obrien@example.com', 'E0C9BC4BDA45', 'valid', '2024-03-25 13:26:00'),
    (6, 7, 'Greta Lindqvist', 'greta.lindqvist@example.com', 'B17947BEF23E', 'valid', '2024-03-28 13:43:00'),
    (5, 7, 'Alice Jansen', 'alice.jansen@example.com', '5487B751A450', 'valid', '2024-03-28 13:44:00'),
    (2, 9, 'Chloe Martin', 'chloe.martin@example.com', '1D33AB9488CF', 'valid', '2024-04-03 14:17:00'),
    (1, NULL, 'Guest of Mira Kovac', NULL, 'DF1670BD56E8', 'valid', '2024-05-20 10:00:00');

INSERT INTO registrations (event_id, user_id, status, note, created_at) VALUES
    (1, 9, 'confirmed', 'Volunteer: bar shift Saturday', '2024-04-02 10:00:00'),
    (1, 10, 'confirmed', 'Volunteer: info booth', '2024-04-02 10:30:00'),
    (1, 11, 'waitlisted', 'Volunteer: any shift', '2024-04-03 09:15:00'),
    (3, 12, 'pending', 'Press accreditation', '2024-04-05 14:00:00'),
    (3, 13, 'confirmed', 'Photographer', '2024-04-06 16:45:00'),
    (2, 14, 'cancelled', NULL, '2024-04-07 11:20:00');

INSERT INTO check_ins (ticket_id, staff_user_id, gate, checked_in_at) VALUES
    (4, 2, 'Harbour Entrance', '2024-06-21 18:42:00'),
    (5, 2, 'Harbour Entrance', '2024-06-21 18:43:00'),
    (1, 2, 'North Gate', '2024-07-12 13:58:00'),
    (3, 2, 'South Gate', '2024-07-12 15:21:00');

INSERT INTO newsletter_subscribers (email, user_id, source, confirmed, subscribed_at, unsubscribed_at) VALUES
    ('alice.jansen@example.com', 1, 'checkout', TRUE, '2024-03-10 12:05:00', NULL),
    ('chloe.martin@example.com', 3, 'checkout', TRUE, '2024-03-16 13:00:00', NULL),
    ('greta.lindqvist@example.com', 7, 'footer', FALSE, '2024-03-20 20:20:00', NULL),
    ('lars.nielsen@example.com', 12, 'event', TRUE, '2024-04-05 14:10:00', '2024-05-01 09:00:00'),
    ('festival.fan@example.net', NULL, 'footer', TRUE, '2024-02-14 08:30:00', NULL),
    ('jazz.lover@example.net', NULL, 'import', TRUE, '2024-01-30 17:00:00', NULL);

INSERT INTO reviews (product_id, user_id, rating, title, body, created_at) VALUES
    (1, 1, 5, 'Great fit', 'Soft cotton, the print survived many washes.', '2024-03-25 19:00:00'),
    (3, 1, 3, 'Does the job', 'Thin, but it kept me dry for a day.', '2024-03-26 08:10:00'),
    (7, 2, 5, 'Superb pressing', 'Quiet vinyl and a great live mix.', '2024-03-30 21:40:00'),
    (6, 3, 4, 'Handy', 'Sturdy cup, the deposit system works well.', '2024-04-02 12:00:00'),
    (10, 6, 4, 'Keeps water cold', NULL, '2024-04-10 09:30:00'),
    (12, 7, 2, 'Too loose', 'Kept falling out during the set.', '2024-04-12 23:15:00');
