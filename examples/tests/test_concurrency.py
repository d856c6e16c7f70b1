"""Concurrency inside one test: threads share the client, or open their own connections."""

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor


def test_threads_can_share_one_client(db):
    def log(i):
        db.execute("INSERT INTO logs (message) VALUES (?)", [f"Message {i}"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(log, range(10)))

    assert db.execute("SELECT COUNT(*) AS count FROM logs").rows[0]["count"] == 10


def test_other_connections_in_the_process_reach_the_same_database(db, db_url):
    db.execute("INSERT INTO users (name, email) VALUES ('Shared', 'shared@example.com')")

    def count_users(_):
        # what an app would do: open its own connection from the URL in the environment
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///").replace("&uri=true", ""), uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(count_users, range(4))) == [1, 1, 1, 1]
    assert os.environ["DATABASE_URL"] == db_url


def test_tracked_connections_see_committed_work(db):
    writer = db.connect()
    writer.execute("INSERT INTO users (name, email) VALUES ('W', 'w@example.com')")
    writer.commit()

    assert db.execute("SELECT name FROM users").rows[0]["name"] == "W"
