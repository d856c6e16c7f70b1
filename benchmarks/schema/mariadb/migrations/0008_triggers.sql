-- Triggers: updated_at maintenance, stock bookkeeping, ticket quotas, check-ins and the audit trail.
-- Same triggers (names, events, effects) as the SQLite and PostgreSQL variants, in MariaDB's dialect:
--
-- * MariaDB triggers have no WHEN clause: the condition is in the statement's WHERE.
-- * No IF ... END IF blocks (dbscope's splitter reads END as the end of the trigger's body): a
--   rejection is a SELECT ... INTO that finds no row when the check fails, whose NOT FOUND handler
--   raises SQLSTATE 23000 (an integrity error, like SQLite's RAISE(ABORT)).
-- * updated_at: an UPDATE that leaves updated_at unchanged gets now(); an UPDATE that sets it
--   explicitly keeps that value (the business triggers pass the time of the event that caused it).
-- * Triggers on the same event fire in creation order, which is name order here, as in PostgreSQL.

CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON users FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_addresses_updated_at BEFORE UPDATE ON addresses FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_settings_updated_at BEFORE UPDATE ON settings FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_venues_updated_at BEFORE UPDATE ON venues FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_events_updated_at BEFORE UPDATE ON events FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_artists_updated_at BEFORE UPDATE ON artists FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_products_updated_at BEFORE UPDATE ON products FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_product_variants_updated_at BEFORE UPDATE ON product_variants FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_discounts_updated_at BEFORE UPDATE ON discounts FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_carts_updated_at BEFORE UPDATE ON carts FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_orders_updated_at BEFORE UPDATE ON orders FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

CREATE TRIGGER trg_ticket_types_updated_at BEFORE UPDATE ON ticket_types FOR EACH ROW
    SET NEW.updated_at = IF(NEW.updated_at <=> OLD.updated_at, now(), NEW.updated_at);

-- Users ----------------------------------------------------------------------

CREATE TRIGGER trg_users_audit_insert AFTER INSERT ON users FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.id, 'users', NEW.id, 'insert', CONCAT('email=', NEW.email), NEW.created_at);

-- Stock ----------------------------------------------------------------------

CREATE TRIGGER trg_order_items_check_product BEFORE INSERT ON order_items FOR EACH ROW
BEGIN
    DECLARE found INT;
    BEGIN
        DECLARE EXIT HANDLER FOR NOT FOUND
            SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'order item product is missing or inactive';
        SELECT 1 INTO found FROM products WHERE id = NEW.product_id AND is_active;
    END;
    BEGIN
        DECLARE EXIT HANDLER FOR NOT FOUND
            SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'order item variant does not belong to its product';
        SELECT 1 INTO found FROM DUAL
         WHERE NEW.variant_id IS NULL
            OR EXISTS (SELECT 1 FROM product_variants WHERE id = NEW.variant_id AND product_id = NEW.product_id);
    END;
END;

CREATE TRIGGER trg_order_items_stock_out AFTER INSERT ON order_items FOR EACH ROW
BEGIN
    DECLARE ordered_at DATETIME DEFAULT COALESCE((SELECT created_at FROM orders WHERE id = NEW.order_id), now());
    UPDATE products
       SET stock = stock - NEW.quantity, updated_at = ordered_at
     WHERE id = NEW.product_id;
    UPDATE product_variants
       SET stock = stock - NEW.quantity, updated_at = ordered_at
     WHERE id = NEW.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (NEW.product_id, NEW.variant_id, -NEW.quantity, 'sale', CONCAT('order:', NEW.order_id), ordered_at);
END;

CREATE TRIGGER trg_order_items_stock_back AFTER DELETE ON order_items FOR EACH ROW
BEGIN
    UPDATE products
       SET stock = stock + OLD.quantity, updated_at = now()
     WHERE id = OLD.product_id;
    UPDATE product_variants
       SET stock = stock + OLD.quantity, updated_at = now()
     WHERE id = OLD.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (OLD.product_id, OLD.variant_id, OLD.quantity, 'cancel', CONCAT('order:', OLD.order_id), now());
END;

-- Sales and cancellations are booked by the order_items triggers; other movements apply here.

CREATE TRIGGER trg_stock_movements_apply AFTER INSERT ON stock_movements FOR EACH ROW
BEGIN
    UPDATE products
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.product_id AND NEW.reason IN ('restock', 'return', 'adjustment');
    UPDATE product_variants
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.variant_id AND NEW.reason IN ('restock', 'return', 'adjustment');
END;

-- Orders ---------------------------------------------------------------------

CREATE TRIGGER trg_orders_audit_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.user_id, 'orders', NEW.id, 'insert', CONCAT('status=', NEW.status), NEW.created_at);

CREATE TRIGGER trg_orders_audit_status AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    SELECT NEW.user_id, 'orders', NEW.id, 'update', CONCAT('status ', OLD.status, ' -> ', NEW.status), NEW.updated_at
      FROM DUAL
     WHERE NOT (NEW.status <=> OLD.status);

CREATE TRIGGER trg_orders_audit_delete AFTER DELETE ON orders FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (OLD.user_id, 'orders', OLD.id, 'delete', CONCAT('status=', OLD.status), now());

CREATE TRIGGER trg_orders_discount_use AFTER INSERT ON orders FOR EACH ROW
    UPDATE discounts
       SET used_count = used_count + 1, updated_at = NEW.created_at
     WHERE id = NEW.discount_id;

-- Payments and refunds -------------------------------------------------------

CREATE TRIGGER trg_payments_audit_insert AFTER INSERT ON payments FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT user_id FROM orders WHERE id = NEW.order_id), 'payments', NEW.id, 'insert',
            CONCAT('status=', NEW.status, ' provider=', NEW.provider), NEW.created_at);

CREATE TRIGGER trg_payments_mark_order_paid AFTER INSERT ON payments FOR EACH ROW
    UPDATE orders
       SET status = 'paid', updated_at = NEW.created_at
     WHERE id = NEW.order_id AND status = 'pending' AND NEW.status = 'captured';

CREATE TRIGGER trg_refunds_check_amount BEFORE INSERT ON refunds FOR EACH ROW
BEGIN
    DECLARE paid DECIMAL(10, 2);
    BEGIN
        DECLARE EXIT HANDLER FOR NOT FOUND
            SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'refunds need a captured payment';
        SELECT amount INTO paid FROM payments
         WHERE id = NEW.payment_id AND status IN ('captured', 'refunded');
    END;
    BEGIN
        DECLARE EXIT HANDLER FOR NOT FOUND
            SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'refund exceeds the amount left on the payment';
        SELECT 1 INTO paid FROM DUAL
         WHERE NEW.amount <= paid - (SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = NEW.payment_id);
    END;
END;

CREATE TRIGGER trg_refunds_audit_insert AFTER INSERT ON refunds FOR EACH ROW
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT o.user_id FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = NEW.payment_id),
            'refunds', NEW.id, 'insert', CONCAT('payment=', NEW.payment_id), NEW.created_at);

-- Tickets and check-ins ------------------------------------------------------

CREATE TRIGGER trg_tickets_check_quota BEFORE INSERT ON tickets FOR EACH ROW
BEGIN
    DECLARE found INT;
    DECLARE EXIT HANDLER FOR NOT FOUND
        SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'ticket type is sold out';
    SELECT 1 INTO found FROM DUAL
     WHERE (SELECT COUNT(*) FROM tickets WHERE ticket_type_id = NEW.ticket_type_id)
           < (SELECT quota FROM ticket_types WHERE id = NEW.ticket_type_id);
END;

CREATE TRIGGER trg_tickets_count_sold AFTER INSERT ON tickets FOR EACH ROW
    UPDATE ticket_types
       SET sold = sold + 1, updated_at = NEW.created_at
     WHERE id = NEW.ticket_type_id;

CREATE TRIGGER trg_tickets_release AFTER DELETE ON tickets FOR EACH ROW
    UPDATE ticket_types
       SET sold = sold - 1, updated_at = now()
     WHERE id = OLD.ticket_type_id;

CREATE TRIGGER trg_check_ins_validate BEFORE INSERT ON check_ins FOR EACH ROW
BEGIN
    DECLARE found INT;
    DECLARE EXIT HANDLER FOR NOT FOUND
        SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'ticket is not valid for check-in';
    SELECT 1 INTO found FROM tickets WHERE id = NEW.ticket_id AND status = 'valid';
END;

CREATE TRIGGER trg_check_ins_mark_used AFTER INSERT ON check_ins FOR EACH ROW
    UPDATE tickets SET status = 'used' WHERE id = NEW.ticket_id;
