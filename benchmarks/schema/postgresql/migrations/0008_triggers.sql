-- Triggers: updated_at maintenance, stock bookkeeping, ticket quotas, check-ins and the audit trail.
-- Same triggers (names, events, effects) as the SQLite variant; each one calls a plpgsql function.
--
-- updated_at: an UPDATE that leaves updated_at unchanged gets now(); an UPDATE that sets updated_at
-- explicitly keeps that value (the business triggers below pass the time of the event that caused
-- the change, so seeding is deterministic).
-- Rejections raise SQLSTATE 23514 (check_violation), an integrity error like SQLite's RAISE(ABORT).
-- PostgreSQL fires triggers on the same event in name order.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_addresses_updated_at BEFORE UPDATE ON addresses
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_settings_updated_at BEFORE UPDATE ON settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_venues_updated_at BEFORE UPDATE ON venues
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_events_updated_at BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_artists_updated_at BEFORE UPDATE ON artists
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_products_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_product_variants_updated_at BEFORE UPDATE ON product_variants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_discounts_updated_at BEFORE UPDATE ON discounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_carts_updated_at BEFORE UPDATE ON carts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_orders_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_ticket_types_updated_at BEFORE UPDATE ON ticket_types
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Users ----------------------------------------------------------------------

CREATE FUNCTION users_audit_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.id, 'users', NEW.id, 'insert', 'email=' || NEW.email, NEW.created_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_users_audit_insert AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_audit_insert();

-- Stock ----------------------------------------------------------------------

CREATE FUNCTION order_items_check_product() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM products WHERE id = NEW.product_id AND is_active) THEN
        RAISE EXCEPTION 'order item product is missing or inactive' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.variant_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM product_variants
                        WHERE id = NEW.variant_id AND product_id = NEW.product_id) THEN
        RAISE EXCEPTION 'order item variant does not belong to its product' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_order_items_check_product BEFORE INSERT ON order_items
    FOR EACH ROW EXECUTE FUNCTION order_items_check_product();

CREATE FUNCTION order_items_stock_out() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ordered_at timestamptz;
BEGIN
    ordered_at := COALESCE((SELECT created_at FROM orders WHERE id = NEW.order_id), now());
    UPDATE products
       SET stock = stock - NEW.quantity, updated_at = ordered_at
     WHERE id = NEW.product_id;
    UPDATE product_variants
       SET stock = stock - NEW.quantity, updated_at = ordered_at
     WHERE id = NEW.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (NEW.product_id, NEW.variant_id, -NEW.quantity, 'sale', 'order:' || NEW.order_id, ordered_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_order_items_stock_out AFTER INSERT ON order_items
    FOR EACH ROW EXECUTE FUNCTION order_items_stock_out();

CREATE FUNCTION order_items_stock_back() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products
       SET stock = stock + OLD.quantity, updated_at = now()
     WHERE id = OLD.product_id;
    UPDATE product_variants
       SET stock = stock + OLD.quantity, updated_at = now()
     WHERE id = OLD.variant_id;
    INSERT INTO stock_movements (product_id, variant_id, quantity, reason, reference, created_at)
    VALUES (OLD.product_id, OLD.variant_id, OLD.quantity, 'cancel', 'order:' || OLD.order_id, now());
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_order_items_stock_back AFTER DELETE ON order_items
    FOR EACH ROW EXECUTE FUNCTION order_items_stock_back();

-- Sales and cancellations are booked by the order_items triggers; other movements apply here.

CREATE FUNCTION stock_movements_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.product_id;
    UPDATE product_variants
       SET stock = stock + NEW.quantity, updated_at = NEW.created_at
     WHERE id = NEW.variant_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_stock_movements_apply AFTER INSERT ON stock_movements
    FOR EACH ROW
    WHEN (NEW.reason IN ('restock', 'return', 'adjustment')) EXECUTE FUNCTION stock_movements_apply();

-- Orders ---------------------------------------------------------------------

CREATE FUNCTION orders_audit_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.user_id, 'orders', NEW.id, 'insert', 'status=' || NEW.status, NEW.created_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_orders_audit_insert AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_audit_insert();

CREATE FUNCTION orders_audit_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (NEW.user_id, 'orders', NEW.id, 'update', 'status ' || OLD.status || ' -> ' || NEW.status,
            NEW.updated_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_orders_audit_status AFTER UPDATE OF status ON orders
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION orders_audit_status();

CREATE FUNCTION orders_audit_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES (OLD.user_id, 'orders', OLD.id, 'delete', 'status=' || OLD.status, now());
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_orders_audit_delete AFTER DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_audit_delete();

CREATE FUNCTION orders_discount_use() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE discounts
       SET used_count = used_count + 1, updated_at = NEW.created_at
     WHERE id = NEW.discount_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_orders_discount_use AFTER INSERT ON orders
    FOR EACH ROW
    WHEN (NEW.discount_id IS NOT NULL) EXECUTE FUNCTION orders_discount_use();

-- Payments and refunds -------------------------------------------------------

CREATE FUNCTION payments_audit_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT user_id FROM orders WHERE id = NEW.order_id), 'payments', NEW.id, 'insert',
            'status=' || NEW.status || ' provider=' || NEW.provider, NEW.created_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_payments_audit_insert AFTER INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_audit_insert();

CREATE FUNCTION payments_mark_order_paid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders
       SET status = 'paid', updated_at = NEW.created_at
     WHERE id = NEW.order_id AND status = 'pending';
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_payments_mark_order_paid AFTER INSERT ON payments
    FOR EACH ROW
    WHEN (NEW.status = 'captured') EXECUTE FUNCTION payments_mark_order_paid();

CREATE FUNCTION refunds_check_amount() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    paid     numeric;
    refunded numeric;
BEGIN
    SELECT amount INTO paid FROM payments
     WHERE id = NEW.payment_id AND status IN ('captured', 'refunded');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refunds need a captured payment' USING ERRCODE = 'check_violation';
    END IF;
    SELECT COALESCE(SUM(amount), 0) INTO refunded FROM refunds WHERE payment_id = NEW.payment_id;
    IF NEW.amount > paid - refunded THEN
        RAISE EXCEPTION 'refund exceeds the amount left on the payment' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_refunds_check_amount BEFORE INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_check_amount();

CREATE FUNCTION refunds_audit_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_logs (user_id, entity, entity_id, action, details, created_at)
    VALUES ((SELECT o.user_id FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = NEW.payment_id),
            'refunds', NEW.id, 'insert', 'payment=' || NEW.payment_id, NEW.created_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_refunds_audit_insert AFTER INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_audit_insert();

-- Tickets and check-ins ------------------------------------------------------

CREATE FUNCTION tickets_check_quota() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COUNT(*) FROM tickets WHERE ticket_type_id = NEW.ticket_type_id)
       >= (SELECT quota FROM ticket_types WHERE id = NEW.ticket_type_id) THEN
        RAISE EXCEPTION 'ticket type is sold out' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_tickets_check_quota BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_check_quota();

CREATE FUNCTION tickets_count_sold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket_types
       SET sold = sold + 1, updated_at = NEW.created_at
     WHERE id = NEW.ticket_type_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_tickets_count_sold AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_count_sold();

CREATE FUNCTION tickets_release() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket_types
       SET sold = sold - 1, updated_at = now()
     WHERE id = OLD.ticket_type_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_tickets_release AFTER DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_release();

CREATE FUNCTION check_ins_validate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tickets WHERE id = NEW.ticket_id AND status = 'valid') THEN
        RAISE EXCEPTION 'ticket is not valid for check-in' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_check_ins_validate BEFORE INSERT ON check_ins
    FOR EACH ROW EXECUTE FUNCTION check_ins_validate();

CREATE FUNCTION check_ins_mark_used() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets SET status = 'used' WHERE id = NEW.ticket_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_check_ins_mark_used AFTER INSERT ON check_ins
    FOR EACH ROW EXECUTE FUNCTION check_ins_mark_used();
