"""Concurrency inside one test: threads on one client, on their own connections, and the
app serving many requests at once -- all on this test's database, and never overselling."""

from concurrent.futures import ThreadPoolExecutor

from festival import shop


def test_threads_can_share_one_client(db):
    def log(i):
        return db.execute("INSERT INTO logs (message, timestamp) VALUES (?, datetime('now'))", [f"Message {i}"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(log, range(10)))

    assert db.execute("SELECT COUNT(*) AS count FROM logs").rows[0]["count"] == 10


def test_fifty_concurrent_reads_each_get_their_own_answer(db):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: db.execute("SELECT ? AS iteration", [i]).rows[0]["iteration"], range(50)))

    assert results == list(range(50))


def test_concurrent_api_purchases_never_oversell(db, api):
    # 30 buyers, 5 T-shirts: the app takes the stock in a BEGIN IMMEDIATE transaction
    def buy(_):
        return api.post("/api/products/prod-789/purchase", json={"quantity": 1}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(buy, range(30)))

    assert statuses.count(201) == 5
    assert statuses.count(409) == 25
    assert db.execute("SELECT stock FROM products WHERE id = 'prod-789'").scalar() == 0
    assert db.execute("SELECT SUM(quantity) FROM order_items").scalar() == 5


def test_concurrent_purchases_of_mixed_sizes_add_up(db):
    # the workshop has 20 tickets; 12 buyers want 1, 2 or 3 each (24 in all)
    wanted = [1, 2, 3] * 4

    def buy(quantity):
        try:
            return shop.purchase("prod-456", quantity)["quantity"]
        except shop.Conflict:
            return 0

    with ThreadPoolExecutor(max_workers=6) as pool:
        sold = sum(pool.map(buy, wanted))

    stock = db.execute("SELECT stock FROM products WHERE id = 'prod-456'").scalar()
    assert sold + stock == 20
    assert 18 <= sold <= 20  # at most 2 left over: nobody wanting more than is left got it
    assert db.execute("SELECT COALESCE(SUM(quantity), 0) FROM order_items").scalar() == sold


def test_only_one_of_many_simultaneous_subscriptions_wins(db, api):
    def subscribe(_):
        return api.post("/api/newsletter", json={"email": "rush@example.com"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(subscribe, range(8)))

    assert sorted(statuses) == [201] + [409] * 7
    assert db.execute("SELECT COUNT(*) FROM newsletter_subscribers").scalar() == 1


def test_connections_of_other_threads_see_committed_work(db):
    writer = db.connect()  # a DB-API connection to this test's database, closed by dbscope
    writer.execute("INSERT INTO users (name, email) VALUES ('Writer', 'writer@example.com')")
    writer.commit()

    def count_users(_):
        reader = db.connect()
        return reader.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(count_users, range(4))) == [1, 1, 1, 1]
