-- Triggers: updated_at maintenance, stock bookkeeping, ticket quotas, check-ins and the audit trail.
--
-- updated_at: an UPDATE that leaves updated_at unchanged gets CURRENT_TIMESTAMP; an UPDATE that sets
-- updated_at explicitly keeps that value (the business triggers below pass the time of the event that
-- caused the change, so seeding is deterministic).
-- When several triggers fire on the same event SQLite runs the most recently created one first;
-- they are created here in the reverse of the (alphabetical) order PostgreSQL uses, so both
-- databases write the same rows in the same order.

CREATE TRIGGER trg_users_updated_at
AFTER UPDATE ON users
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE users SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_addresses_updated_at
AFTER UPDATE ON addresses
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE addresses SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_settings_updated_at
AFTER UPDATE ON settings
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE settings SET updated_at = CURRENT_TIMESTAMP WHERE key = NEW.key;
END;

CREATE TRIGGER trg_venues_updated_at
AFTER UPDATE ON venues
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE venues SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_events_updated_at
AFTER UPDATE ON events
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE events SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_artists_updated_at
AFTER UPDATE ON artists
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE artists SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_products_updated_at
AFTER UPDATE ON products
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE products SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_product_variants_updated_at
AFTER UPDATE ON product_variants
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE product_variants SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_discounts_updated_at
AFTER UPDATE ON discounts
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE discounts SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_carts_updated_at
AFTER UPDATE ON carts
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE carts SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_orders_updated_at
AFTER UPDATE ON orders
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE orders SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TRIGGER trg_ticket_types_updated_at
AFTER UPDATE ON ticket_types
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE ticket_types SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

-- Users ---------------------------------------------------------------------

CREATE TRIGGER trg_users_audit_insert
AFTER INSERT ON users
FOR EACH ROW
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.id, 'users', NEW.id, 'insert', 'email=' || NEW.email, NEW.created_at);
END;

-- Stock -----------------------------------------------------------------------

CREATE TRIGGER trg_order_items_check_product
BEFORE INSERT ON order_items
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'order item product is missing or inactive')
     WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = NEW.product_id AND is_active);
    SELECT RAISE(ABORT, 'order item variant does not belong to its product')
     WHERE NEW.variant_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM product_variants
                        WHERE id = NEW.variant_id AND product_id = NEW.product_id);
END;

CREATE TRIGGER trg_order_items_stock_out
AFTER INSERT ON order_items
FOR EACH ROW
BEGIN
    UPDATE products
       SET stock = stock - NEW.quantity,
           updated_at = COALESCE((SELECT created_at FROM orders WHERE id = NEW.order_id), CURRENT_TIMESTAMP)
     WHERE id = NEW.product_id;
    UPDATE product_variants
       SET stock = stock - NEW.quantity,
           updated_at = COALESCE((SELECT created_at FROM orders WHERE id = NEW.order_id), CURRENT_TIMESTAMP)
     WHERE id = NEW.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (NEW.product_id, NEW.variant_id, -NEW.quantity, 'sale', 'order:' || NEW.order_id,
            COALESCE((SELECT created_at FROM orders WHERE id = NEW.order_id), CURRENT_TIMESTAMP));
END;

CREATE TRIGGER trg_order_items_stock_back
AFTER DELETE ON order_items
FOR EACH ROW
BEGIN
    UPDATE products
       SET stock = stock + OLD.quantity, updated_at = CURRENT_TIMESTAMP
     WHERE id = OLD.product_id;
    UPDATE product_variants
       SET stock = stock + OLD.quantity, updated_at = CURRENT_TIMESTAMP
     WHERE id = OLD.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (OLD.product_id, OLD.variant_id, OLD.quantity, 'cancel', 'order:' || OLD.order_id,
            CURRENT_TIMESTAMP);
END;

-- Sales and cancellations are booked by the order_items triggers; other movements apply here.
CREATE TRIGGER trg_stock_movements_apply
AFTER INSERT ON stock_movements
FOR EACH ROW WHEN NEW.reason IN ('restock', 'return', 'adjustment')
BEGIN
    UPDATE products
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.product_id;
    UPDATE product_variants
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.variant_id;
END;

-- Orders ----------------------------------------------------------------------

CREATE TRIGGER trg_orders_discount_use
AFTER INSERT ON orders
FOR EACH ROW WHEN NEW.discount_id IS NOT NULL
BEGIN
    UPDATE discounts
       SET used_count = used_count + 1, updated_at = NEW.created_at
     WHERE id = NEW.discount_id;
END;

CREATE TRIGGER trg_orders_audit_insert
AFTER INSERT ON orders
FOR EACH ROW
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.user_id, 'orders', NEW.id, 'insert', 'status=' || NEW.status, NEW.created_at);
END;

CREATE TRIGGER trg_orders_audit_status
AFTER UPDATE OF status ON orders
FOR EACH ROW WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.user_id, 'orders', NEW.id, 'update', 'status ' || OLD.status || ' -> ' || NEW.status,
            CASE WHEN NEW.updated_at IS OLD.updated_at THEN CURRENT_TIMESTAMP ELSE NEW.updated_at END);
END;

CREATE TRIGGER trg_orders_audit_delete
AFTER DELETE ON orders
FOR EACH ROW
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (OLD.user_id, 'orders', OLD.id, 'delete', 'status=' || OLD.status, CURRENT_TIMESTAMP);
END;

-- Payments and refunds --------------------------------------------------------

CREATE TRIGGER trg_payments_mark_order_paid
AFTER INSERT ON payments
FOR EACH ROW WHEN NEW.status = 'captured'
BEGIN
    UPDATE orders
       SET status = 'paid', updated_at = NEW.created_at
     WHERE id = NEW.order_id AND status = 'pending';
END;

CREATE TRIGGER trg_payments_audit_insert
AFTER INSERT ON payments
FOR EACH ROW
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT user_id FROM orders WHERE id = NEW.order_id), 'payments', NEW.id, 'insert',
            'status=' || NEW.status || ' provider=' || NEW.provider, NEW.created_at);
END;

CREATE TRIGGER trg_refunds_check_amount
BEFORE INSERT ON refunds
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'refunds need a captured payment')
     WHERE NOT EXISTS (SELECT 1 FROM payments
                        WHERE id = NEW.payment_id AND status IN ('captured', 'refunded'));
    SELECT RAISE(ABORT, 'refund exceeds the amount left on the payment')
     WHERE round(NEW.amount
                 - (SELECT amount FROM payments WHERE id = NEW.payment_id)
                 + (SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = NEW.payment_id), 2) > 0;
END;

CREATE TRIGGER trg_refunds_audit_insert
AFTER INSERT ON refunds
FOR EACH ROW
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT o.user_id FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = NEW.payment_id),
            'refunds', NEW.id, 'insert', 'payment=' || NEW.payment_id, NEW.created_at);
END;

-- Tickets and check-ins -------------------------------------------------------

CREATE TRIGGER trg_tickets_check_quota
BEFORE INSERT ON tickets
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ticket type is sold out')
     WHERE (SELECT COUNT(*) FROM tickets WHERE ticket_type_id = NEW.ticket_type_id)
           >= (SELECT quota FROM ticket_types WHERE id = NEW.ticket_type_id);
END;

CREATE TRIGGER trg_tickets_count_sold
AFTER INSERT ON tickets
FOR EACH ROW
BEGIN
    UPDATE ticket_types
       SET sold = sold + 1, updated_at = NEW.created_at
     WHERE id = NEW.ticket_type_id;
END;

CREATE TRIGGER trg_tickets_release
AFTER DELETE ON tickets
FOR EACH ROW
BEGIN
    UPDATE ticket_types
       SET sold = sold - 1, updated_at = CURRENT_TIMESTAMP
     WHERE id = OLD.ticket_type_id;
END;

CREATE TRIGGER trg_check_ins_validate
BEFORE INSERT ON check_ins
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ticket is not valid for check-in')
     WHERE NOT EXISTS (SELECT 1 FROM tickets WHERE id = NEW.ticket_id AND status = 'valid');
END;

CREATE TRIGGER trg_check_ins_mark_used
AFTER INSERT ON check_ins
FOR EACH ROW
BEGIN
    UPDATE tickets SET status = 'used' WHERE id = NEW.ticket_id;
END;
