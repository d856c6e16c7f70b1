-- Reporting views: the SQLite and PostgreSQL views, with MariaDB's CAST ... AS SIGNED and `key` quoted.

CREATE VIEW order_summaries AS
SELECT o.id                                        AS order_id,
       o.user_id                                   AS user_id,
       u.email                                     AS user_email,
       o.status                                    AS status,
       o.created_at                                AS created_at,
       COUNT(oi.id)                                AS item_count,
       COALESCE(SUM(oi.quantity), 0)               AS units,
       COALESCE(SUM(oi.quantity * oi.unit_price), 0) AS items_subtotal,
       o.total                                     AS total
  FROM orders o
  JOIN users u ON u.id = o.user_id
  LEFT JOIN order_items oi ON oi.order_id = o.id
 GROUP BY o.id, o.user_id, u.email, o.status, o.created_at, o.total;

CREATE VIEW product_stock_levels AS
SELECT p.id    AS product_id,
       p.sku   AS sku,
       p.name  AS name,
       c.name  AS category,
       p.stock AS stock,
       COALESCE((SELECT SUM(v.stock) FROM product_variants v WHERE v.product_id = p.id), 0) AS variant_stock,
       (SELECT COUNT(*) FROM product_variants v WHERE v.product_id = p.id) AS variant_count,
       CASE
           WHEN p.stock <= COALESCE(
                    (SELECT CAST(s.value AS SIGNED) FROM settings s
                      WHERE s.`key` = 'inventory.low_stock_threshold'), 10)
           THEN 1 ELSE 0
       END AS low_stock
  FROM products p
  LEFT JOIN categories c ON c.id = p.category_id
 WHERE p.is_active;

CREATE VIEW event_ticket_sales AS
SELECT e.id                              AS event_id,
       e.name                            AS event_name,
       e.starts_at                       AS starts_at,
       e.status                          AS status,
       COUNT(tt.id)                      AS ticket_type_count,
       COALESCE(SUM(tt.quota), 0)        AS quota,
       COALESCE(SUM(tt.sold), 0)         AS sold,
       COALESCE(SUM(tt.sold * tt.price), 0) AS gross_revenue,
       (SELECT COUNT(*)
          FROM check_ins ci
          JOIN tickets t ON t.id = ci.ticket_id
          JOIN ticket_types tt2 ON tt2.id = t.ticket_type_id
         WHERE tt2.event_id = e.id)      AS checked_in
  FROM events e
  LEFT JOIN ticket_types tt ON tt.event_id = e.id
 GROUP BY e.id, e.name, e.starts_at, e.status;

CREATE VIEW event_lineup AS
SELECT e.id        AS event_id,
       e.name      AS event_name,
       v.name      AS venue_name,
       s.name      AS stage_name,
       a.name      AS artist_name,
       a.genre     AS genre,
       p.starts_at AS starts_at,
       p.ends_at   AS ends_at
  FROM performances p
  JOIN events e  ON e.id = p.event_id
  JOIN stages s  ON s.id = p.stage_id
  JOIN venues v  ON v.id = s.venue_id
  JOIN artists a ON a.id = p.artist_id;
