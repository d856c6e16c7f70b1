"""Write sqlite/seed.sql, postgresql/seed.sql and mariadb/seed.sql (next to this file) from one data description.

Run: python benchmarks/schema/generate_seed.py
"""
import hashlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent


class TS:
    def __init__(self, s):
        self.dt = datetime.strptime(s, "%Y-%m-%d %H:%M:%S") if isinstance(s, str) else s

    def __add__(self, td):
        return TS(self.dt + td)

    def __str__(self):
        return self.dt.strftime("%Y-%m-%d %H:%M:%S")


def D(x):
    return Decimal(x).quantize(Decimal("0.01"))


def lit(v, dialect):
    if v is None:
        return "NULL"
    if v is True:
        return "TRUE"
    if v is False:
        return "FALSE"
    if isinstance(v, TS):
        return f"'{v}+00'" if dialect == "pg" else f"'{v}'"
    if isinstance(v, (int, Decimal)):
        return str(v)
    s = str(v)
    assert s.isascii(), s
    return "'" + s.replace("'", "''") + "'"


def h(s, n=64):
    return hashlib.sha256(s.encode()).hexdigest()[:n]


tables = []  # (name, columns, rows)


def add(name, cols, rows):
    for r in rows:
        assert len(r) == len(cols), (name, r)
    tables.append((name, cols, rows))
    return rows


day = timedelta(days=1)
hour = timedelta(hours=1)
minute = timedelta(minutes=1)
T0 = TS("2024-01-01 00:00:00")

# --- accounts ---------------------------------------------------------------
add("roles", ["name", "description", "created_at"], [
    ("admin", "Full access to the back office", T0),
    ("staff", "Box office and gate staff", T0),
    ("customer", "Buys tickets and merchandise", T0),
    ("artist_manager", "Manages artist bookings and guest lists", T0),
])

people = ["Alice Jansen", "Bram de Vries", "Chloe Martin", "Daan Bakker", "Eva Novak", "Finn OBrien",
          "Greta Lindqvist", "Hugo Moreau", "Ines Costa", "Jonas Weber", "Katja Horvat", "Lars Nielsen",
          "Maya Patel", "Noah Schmidt", "Olivia Rossi", "Pieter Visser"]
emails = [p.lower().replace(" ", ".") + "@example.com" for p in people]
user_created = [TS("2024-01-02 09:00:00") + i * 7 * hour for i in range(16)]
users = []
for i, (p, e) in enumerate(zip(people, emails)):
    pw = f"pbkdf2_sha256$600000${h('salt' + e, 16)}${h('pw' + e, 43)}"
    last = TS("2024-04-01 08:00:00") + i * 5 * hour + i * 7 * minute if i < 10 else None
    users.append((p, e, pw, i != 15, last, user_created[i], user_created[i]))
add("users", ["name", "email", "password_hash", "is_active", "last_login_at", "created_at", "updated_at"], users)

ur = [(1, 1, user_created[0]), (2, 2, user_created[1])]
ur += [(u, 3, user_created[u - 1]) for u in range(1, 17)]
add("user_roles", ["user_id", "role_id", "granted_at"], ur)

agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0", "Mozilla/5.0 (Macintosh) Safari/17.4",
          "Mozilla/5.0 (Windows NT 10.0) Chrome/123.0", "Mozilla/5.0 (iPhone) Mobile Safari/17.4"]
sessions = []
for i in range(8):
    c = TS("2024-04-01 08:00:00") + i * 5 * hour + i * 7 * minute
    sessions.append((i + 1, h(f"session-{i + 1}"), f"192.0.2.{10 + i}", agents[i % 4], c, c + 30 * day))
add("sessions", ["user_id", "token", "ip_address", "user_agent", "created_at", "expires_at"], sessions)

places = [("Utrecht", "3511 AB", "NL"), ("Amsterdam", "1012 JS", "NL"), ("Lyon", "69002", "FR"),
          ("Ghent", "9000", "BE"), ("Porto", "4050-001", "PT"), ("Vienna", "1010", "AT"),
          ("Copenhagen", "1050", "DK"), ("Krakow", "31-001", "PL")]
addresses = []
for i, (city, pc, cc) in enumerate(places):
    c = user_created[i] + 10 * minute
    addresses.append((i + 1, "home", f"{12 + 3 * i} Main Street", None, city, pc, cc, True, c, c))
for u in (1, 2):
    c = user_created[u - 1] + 2 * day
    addresses.append((u, "work", f"{100 + u} Canal Road", "Floor 3", "Rotterdam", "3011 AA", "NL", False, c, c))
add("addresses", ["user_id", "label", "line1", "line2", "city", "postal_code", "country", "is_default",
                  "created_at", "updated_at"], addresses)

terms = (
    "1. Scope. These terms apply to all ticket and merchandise sales made through this shop. "
    "2. Tickets. A ticket gives access to the event, day and area printed on it. Each ticket code "
    "can be scanned once; copies are refused at the gate. Tickets are personal and may be "
    "transferred to another holder only through the shop before the sales end date. "
    "3. Prices. All prices include VAT. Service fees are shown before payment. "
    "4. Payment. Orders are confirmed once the payment has been captured. Unpaid orders are "
    "cancelled after 24 hours and their items are returned to stock. "
    "5. Refunds. Merchandise may be returned unused within 14 days. Tickets are refunded only "
    "when an event is cancelled; partial refunds are made to the original payment method. "
    "6. Programme changes. The line-up and running order may change without notice. "
    "7. Liability. The organiser is not liable for loss of or damage to personal property. "
    "8. Privacy. Personal data is processed as described in the privacy notice."
)
privacy = (
    "We store your name, email address, order history and, for tickets, the holder name so that "
    "the ticket can be checked at the gate. Payment details are handled by the payment provider "
    "and never stored by us. Newsletter subscriptions require a confirmed opt-in and can be "
    "cancelled from every message. Audit records of orders and payments are kept for seven years "
    "to meet accounting rules; all other data is deleted two years after your last order."
)
settings = [
    ("site.name", "Sunfield Festival Shop", "Shown in page titles and emails"),
    ("site.default_currency", "EUR", "ISO 4217 currency for new orders"),
    ("site.timezone", "Europe/Amsterdam", "Time zone used to display event times"),
    ("inventory.low_stock_threshold", "10", "Products at or below this stock are flagged"),
    ("checkout.max_items_per_order", "20", "Upper limit of units in one order"),
    ("checkout.cart_ttl_hours", "72", "Open carts are abandoned after this many hours"),
    ("tickets.max_per_order", "6", "Tickets of one type per order"),
    ("tickets.code_length", "12", "Length of generated ticket codes"),
    ("mail.from_address", "tickets@example.org", "Sender of order and ticket emails"),
    ("mail.support_address", "support@example.org", "Reply-to address"),
    ("legal.terms_of_sale", terms, "Terms of sale shown at checkout"),
    ("legal.privacy_notice", privacy, "Privacy notice linked from every page"),
]
add("settings", ["key", "value", "description", "updated_at"], [s + (T0,) for s in settings])

add("logs", ["message", "created_at"], [
    ("seed: accounts imported", TS("2024-01-05 06:00:00")),
    ("seed: catalog imported", TS("2024-01-20 06:00:00")),
    ("seed: programme published", TS("2024-02-15 06:00:00")),
    ("maintenance: nightly cart cleanup finished", TS("2024-03-20 03:00:00")),
])

# --- events -----------------------------------------------------------------
add("venues", ["name", "city", "country", "capacity", "created_at", "updated_at"], [
    ("Sunfield Park", "Utrecht", "NL", 25000, TS("2024-01-10 10:00:00"), TS("2024-01-10 10:00:00")),
    ("Harbour Hall", "Rotterdam", "NL", 4000, TS("2024-01-10 10:05:00"), TS("2024-01-10 10:05:00")),
    ("Riverside Arena", "Ghent", "BE", 8000, TS("2024-01-10 10:10:00"), TS("2024-01-10 10:10:00")),
])
add("stages", ["venue_id", "name", "capacity"], [
    (1, "Main Stage", 15000), (1, "Forest Stage", 6000), (2, "Hall A", 2500),
    (2, "Hall B", 1500), (3, "Arena", 7000), (3, "Club", 800),
])
events = [
    (1, "Sunfield Festival 2024", "sunfield-festival-2024", "Three days of music in the park.",
     TS("2024-07-12 14:00:00"), TS("2024-07-14 23:30:00"), "published"),
    (2, "Harbour Jazz Nights", "harbour-jazz-nights-2024", "Two evenings of jazz by the water.",
     TS("2024-06-21 19:00:00"), TS("2024-06-22 23:00:00"), "published"),
    (3, "Riverside Electronic", "riverside-electronic-2024", "An all-night electronic programme.",
     TS("2024-09-06 20:00:00"), TS("2024-09-07 04:00:00"), "published"),
    (1, "Sunfield Winter Sessions", "sunfield-winter-sessions-2024", "Acoustic sets, programme to follow.",
     TS("2024-12-14 16:00:00"), TS("2024-12-14 23:00:00"), "draft"),
]
add("events", ["venue_id", "name", "slug", "description", "starts_at", "ends_at", "status", "created_at",
               "updated_at"],
    [e + (TS("2024-01-12 09:00:00") + i * hour,) * 2 for i, e in enumerate(events)])
artists = [("The Paper Lanterns", "indie", "GB"), ("Mira Kovac", "electronic", "HR"),
           ("Low Tide Orchestra", "jazz", "NL"), ("Juno and the Owls", "folk", "IE"),
           ("Static Bloom", "electronic", "DE"), ("Kofi Mensah Quartet", "jazz", "GH"),
           ("Neon Harvest", "pop", "SE"), ("Ana Ribeiro", "singer-songwriter", "PT")]
add("artists", ["name", "slug", "genre", "country", "bio", "created_at", "updated_at"], [
    (n, n.lower().replace(" ", "-"), g, c, f"{n} play {g} and are touring Europe in 2024.",
     TS("2024-01-15 11:00:00") + i * 10 * minute, TS("2024-01-15 11:00:00") + i * 10 * minute)
    for i, (n, g, c) in enumerate(artists)])
perf = [  # event, artist, stage, start, minutes
    (1, 1, 1, "2024-07-12 18:00:00", 75), (1, 7, 1, "2024-07-12 21:00:00", 90),
    (1, 4, 2, "2024-07-13 15:00:00", 60), (1, 8, 2, "2024-07-13 17:00:00", 60),
    (1, 2, 1, "2024-07-14 22:00:00", 90), (2, 3, 3, "2024-06-21 20:00:00", 90),
    (2, 6, 4, "2024-06-21 21:30:00", 75), (2, 3, 3, "2024-06-22 20:00:00", 90),
    (3, 5, 5, "2024-09-06 22:00:00", 120), (3, 2, 5, "2024-09-07 00:30:00", 120),
    (3, 5, 6, "2024-09-06 20:30:00", 60), (4, 8, 1, "2024-12-14 19:00:00", 60),
]
add("performances", ["event_id", "artist_id", "stage_id", "starts_at", "ends_at"],
    [(e, a, s, TS(t), TS(t) + m * minute) for e, a, s, t, m in perf])

# --- catalog ----------------------------------------------------------------
add("categories", ["parent_id", "name", "slug", "created_at"], [
    (None, "Merchandise", "merchandise", TS("2024-01-20 09:00:00")),
    (1, "Apparel", "apparel", TS("2024-01-20 09:01:00")),
    (1, "Accessories", "accessories", TS("2024-01-20 09:02:00")),
    (1, "Music", "music", TS("2024-01-20 09:03:00")),
    (None, "Food and Drink", "food-and-drink", TS("2024-01-20 09:04:00")),
])
products = [  # category, sku, name, price, stock (or None = sum of variants), active
    (2, "TSHIRT-24", "Festival T-Shirt 2024", "25.00", None, True),
    (2, "HOODIE-24", "Festival Hoodie 2024", "49.00", None, True),
    (3, "PONCHO", "Rain Poncho", "6.50", 300, True),
    (3, "TOTE-24", "Tote Bag", "12.00", None, True),
    (3, "PINSET-24", "Enamel Pin Set", "9.50", 120, True),
    (5, "CUP-RE", "Reusable Cup", "3.00", 1000, True),
    (4, "LP-LIVE23", "Vinyl: Live at Sunfield 2023", "29.99", 8, True),
    (4, "CD-COMP24", "Compilation CD 2024", "14.99", 60, True),
    (2, "BUCKET-24", "Bucket Hat", "19.00", None, True),
    (5, "BOTTLE-SS", "Steel Water Bottle", "15.00", 80, True),
    (1, "POSTER-23", "Poster 2023 Edition", "10.00", 5, False),
    (3, "EARPLUGS", "Musician Earplugs", "4.50", 200, True),
]
variants = {  # product -> [(name, delta, stock)]
    1: [("S", "0.00", 40), ("M", "0.00", 60), ("L", "0.00", 50), ("XL", "2.00", 20)],
    2: [("S", "0.00", 15), ("M", "0.00", 25), ("L", "0.00", 25), ("XL", "3.00", 10)],
    4: [("Natural", "0.00", 70), ("Black", "0.00", 45)],
    9: [("S/M", "0.00", 30), ("L/XL", "0.00", 25)],
}
prow, stock = [], {}
for i, (cat, sku, name, price, st, active) in enumerate(products, 1):
    if st is None:
        st = sum(v[2] for v in variants[i])
    stock[i] = st
    c = TS("2024-01-20 10:00:00") + i * minute
    prow.append((cat, sku, name, f"{name}. Official Sunfield merchandise.", D(price), st, active, c, c))
add("products", ["category_id", "sku", "name", "description", "price", "stock", "is_active", "created_at",
                 "updated_at"], prow)
vrows, vid, vstock = [], {}, {}
for p, vs in variants.items():
    for name, delta, st in vs:
        vid[(p, name)] = len(vrows) + 1
        vstock[len(vrows) + 1] = st
        c = TS("2024-01-20 11:00:00") + len(vrows) * minute
        sku = products[p - 1][1] + "-" + name.replace("/", "").upper()
        vrows.append((p, sku, name, D(delta), st, c, c))
add("product_variants", ["product_id", "sku", "name", "price_delta", "stock", "created_at", "updated_at"], vrows)
restock = [(3, None, 200), (6, None, 500), (8, None, 25), (1, vid[(1, "M")], 40), (2, vid[(2, "L")], 20),
           (10, None, 40)]
smrows = []
for i, (p, v, q) in enumerate(restock):
    stock[p] += q
    if v:
        vstock[v] += q
    smrows.append((p, v, q, "restock", f"PO-2024-{101 + i}", TS("2024-02-05 08:00:00") + i * day))
add("stock_movements", ["product_id", "variant_id", "quantity", "reason", "reference", "created_at"], smrows)

# --- commerce ---------------------------------------------------------------
discounts = [("EARLYBIRD10", "percent", "10.00", "2024-01-01 00:00:00", "2024-04-01 00:00:00", 200),
             ("WELCOME5", "fixed", "5.00", "2024-01-01 00:00:00", None, None),
             ("CREW20", "percent", "20.00", "2024-01-01 00:00:00", "2024-12-31 23:59:59", 25)]
add("discounts", ["code", "kind", "value", "valid_from", "valid_until", "max_uses", "created_at", "updated_at"],
    [(c, k, D(v), TS(f), TS(u) if u else None, m, T0 + 6 * hour, T0 + 6 * hour) for c, k, v, f, u, m in discounts])
cart_created = [TS("2024-03-09 18:00:00") + i * day + i * 13 * minute for i in range(5)]
add("carts", ["user_id", "session_id", "status", "created_at", "updated_at"], [
    (i + 1, i + 1, ["converted", "converted", "converted", "open", "abandoned"][i], cart_created[i],
     cart_created[i] + 20 * minute) for i in range(5)])
cart_items = [(1, 1, vid[(1, "M")], 2), (1, 3, None, 1), (2, 2, vid[(2, "L")], 1), (2, 7, None, 1),
              (3, 6, None, 4), (4, 9, vid[(9, "S/M")], 1), (4, 12, None, 2), (5, 8, None, 1)]
add("cart_items", ["cart_id", "product_id", "variant_id", "quantity", "added_at"],
    [(c, p, v, q, cart_created[c - 1] + (i + 1) * minute) for i, (c, p, v, q) in enumerate(cart_items)])

ticket_types = [  # event, name, price, quota
    (1, "Weekend Pass", "189.00", 20000), (1, "Day Ticket Saturday", "89.00", 5000),
    (2, "Evening Pass", "45.00", 2000), (2, "Two-Night Pass", "80.00", 800),
    (3, "Night Ticket", "39.50", 7000), (3, "Early Entry", "29.50", 500),
    (4, "Standard", "35.00", 3000), (4, "Supporter", "60.00", 100),
]
orders = [  # user, cart, discount, items[(product, variant name, qty)], tickets[type]
    (1, 1, None, [(1, "M", 2), (3, None, 1), (5, None, 1)], [1, 1]),
    (2, 2, 1, [(2, "L", 1), (7, None, 1)], [1]),
    (3, 3, None, [(6, None, 4), (12, None, 2)], [3, 3]),
    (4, None, None, [(4, "Black", 1)], [2]),
    (5, None, 2, [(9, "L/XL", 1), (8, None, 1)], [1]),
    (6, None, None, [(10, None, 1)], [5]),
    (7, None, None, [(1, "XL", 1), (12, None, 1)], [6, 5]),
    (8, None, None, [(7, None, 1)], []),
    (3, None, 3, [(2, "M", 1)], [2]),
    (1, None, None, [(4, "Natural", 2)], []),
]
order_created = [TS("2024-03-10 12:00:00") + i * 3 * day + i * 17 * minute for i in range(len(orders))]
orows, oirows, trows, totals = [], [], [], []
for oi, (u, cart, disc, items, tix) in enumerate(orders):
    oid = oi + 1
    sub = Decimal(0)
    seen = set()
    for p, vname, q in items:
        assert p not in seen
        seen.add(p)
        assert products[p - 1][5]
        v = vid[(p, vname)] if vname else None
        price = D(products[p - 1][3]) + (D(variants[p][[x[0] for x in variants[p]].index(vname)][1]) if v else 0)
        stock[p] -= q
        if v:
            vstock[v] -= q
        assert stock[p] >= 0 and (not v or vstock[v] >= 0)
        oirows.append((oid, p, v, q, price))
        sub += price * q
    for k, tt in enumerate(tix):
        sub += D(ticket_types[tt - 1][2])
    if disc:
        kind, val = discounts[disc - 1][1], D(discounts[disc - 1][2])
        sub = sub - (sub * val / 100 if kind == "percent" else val)
    total = sub.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    totals.append(total)
    addr = u if u <= 8 else None
    orows.append((u, cart, addr, disc, "pending", total, "EUR", order_created[oi], order_created[oi]))
add("orders", ["user_id", "cart_id", "shipping_address_id", "discount_id", "status", "total", "currency",
               "created_at", "updated_at"], orows)
add("order_items", ["order_id", "product_id", "variant_id", "quantity", "unit_price"], oirows)
pay = [("card", "captured"), ("paypal", "captured"), ("card", "captured"), ("bank_transfer", "captured"),
       ("card", "captured"), ("voucher", "captured"), ("card", "captured"), ("card", "failed"),
       ("card", "authorized")]
add("payments", ["order_id", "provider", "amount", "status", "reference", "created_at"], [
    (i + 1, prov, totals[i], st, f"PAY-{h(f'pay{i}', 10).upper()}", order_created[i] + (4 + i) * minute)
    for i, (prov, st) in enumerate(pay)])
add("refunds", ["payment_id", "amount", "reason", "created_at"], [
    (1, D("6.50"), "Rain poncho returned unused", order_created[0] + 5 * day),
    (3, D("6.00"), "Two reusable cups arrived damaged", order_created[2] + 4 * day),
])

# --- ticketing --------------------------------------------------------------
add("ticket_types", ["event_id", "name", "price", "quota", "sales_start", "sales_end", "created_at", "updated_at"], [
    (e, n, D(p), q, TS("2024-02-01 10:00:00"), events[e - 1][4], TS("2024-01-25 12:00:00") + i * minute,
     TS("2024-01-25 12:00:00") + i * minute) for i, (e, n, p, q) in enumerate(ticket_types)])
tickets = []
for oi, (u, cart, disc, items, tix) in enumerate(orders):
    for k, tt in enumerate(tix):
        holder = u - 1 if k == 0 else (u + 9) % 16
        tickets.append((tt, oi + 1, people[holder], emails[holder], order_created[oi] + (k + 1) * minute))
tickets.append((1, None, "Guest of Mira Kovac", None, TS("2024-05-20 10:00:00")))
assert len({(t[0], str(t[4])) for t in tickets}) == len(tickets)
add("tickets", ["ticket_type_id", "order_id", "holder_name", "holder_email", "code", "status", "created_at"], [
    (tt, o, n, e, h(f"ticket-{i}", 12).upper(), "valid", c) for i, (tt, o, n, e, c) in enumerate(tickets, 1)])
add("registrations", ["event_id", "user_id", "status", "note", "created_at"], [
    (1, 9, "confirmed", "Volunteer: bar shift Saturday", TS("2024-04-02 10:00:00")),
    (1, 10, "confirmed", "Volunteer: info booth", TS("2024-04-02 10:30:00")),
    (1, 11, "waitlisted", "Volunteer: any shift", TS("2024-04-03 09:15:00")),
    (3, 12, "pending", "Press accreditation", TS("2024-04-05 14:00:00")),
    (3, 13, "confirmed", "Photographer", TS("2024-04-06 16:45:00")),
    (2, 14, "cancelled", None, TS("2024-04-07 11:20:00")),
])
# check in two evening passes of event 2 and two weekend passes of event 1
ev_of = lambda t: ticket_types[tickets[t - 1][0] - 1][0]
check_ins = [(4, "Harbour Entrance", "2024-06-21 18:42:00"), (5, "Harbour Entrance", "2024-06-21 18:43:00"),
             (1, "North Gate", "2024-07-12 13:58:00"), (3, "South Gate", "2024-07-12 15:21:00")]
assert [ev_of(t) for t, _, _ in check_ins] == [2, 2, 1, 1]
add("check_ins", ["ticket_id", "staff_user_id", "gate", "checked_in_at"],
    [(t, 2, g, TS(c)) for t, g, c in check_ins])

# --- marketing --------------------------------------------------------------
add("newsletter_subscribers", ["email", "user_id", "source", "confirmed", "subscribed_at", "unsubscribed_at"], [
    (emails[0], 1, "checkout", True, TS("2024-03-10 12:05:00"), None),
    (emails[2], 3, "checkout", True, TS("2024-03-16 13:00:00"), None),
    (emails[6], 7, "footer", False, TS("2024-03-20 20:20:00"), None),
    (emails[11], 12, "event", True, TS("2024-04-05 14:10:00"), TS("2024-05-01 09:00:00")),
    ("festival.fan@example.net", None, "footer", True, TS("2024-02-14 08:30:00"), None),
    ("jazz.lover@example.net", None, "import", True, TS("2024-01-30 17:00:00"), None),
])
add("reviews", ["product_id", "user_id", "rating", "title", "body", "created_at"], [
    (1, 1, 5, "Great fit", "Soft cotton, the print survived many washes.", TS("2024-03-25 19:00:00")),
    (3, 1, 3, "Does the job", "Thin, but it kept me dry for a day.", TS("2024-03-26 08:10:00")),
    (7, 2, 5, "Superb pressing", "Quiet vinyl and a great live mix.", TS("2024-03-30 21:40:00")),
    (6, 3, 4, "Handy", "Sturdy cup, the deposit system works well.", TS("2024-04-02 12:00:00")),
    (10, 6, 4, "Keeps water cold", None, TS("2024-04-10 09:30:00")),
    (12, 7, 2, "Too loose", "Kept falling out during the set.", TS("2024-04-12 23:15:00")),
])

HEADER = """-- Seed data for the dbscope benchmark schema, written by ../generate_seed.py (edit that,
-- not this file). The SQLite and PostgreSQL seeds hold the same rows. Ids are not given:
-- they are assigned 1, 2, 3, ... in insert order.
-- Inserts fire the triggers, which add audit_logs and stock_movements rows, book stock and
-- ticket sales and mark paid orders; all timestamps are fixed so the result is deterministic.
"""
total_rows = sum(len(r) for _, _, r in tables)
for dialect, sub in (("sqlite", "sqlite"), ("pg", "postgresql"), ("mariadb", "mariadb")):
    out = [HEADER + f"-- {len(tables)} tables, {total_rows} rows.\n"]
    for name, cols, rows in tables:
        body = ",\n".join("    (" + ", ".join(lit(v, dialect) for v in r) + ")" for r in rows)
        if dialect == "mariadb":  # `key` is a reserved word in MariaDB/MySQL
            cols = [f"`{c}`" if c == "key" else c for c in cols]
        out.append(f"INSERT INTO {name} ({', '.join(cols)}) VALUES\n{body};\n")
    (ROOT / sub / "seed.sql").write_text("\n".join(out))
print("tables", len(tables), "rows", total_rows)
