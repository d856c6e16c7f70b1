"""The isolation manager's own API inside a test, at its edges: more scopes than
the test's own, created fast and from threads, a lock that stays in its scope, and
emergency cleanup. Each extra scope is a database of its own, cloned from the same template."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from dbscope import ClientClosedError


def test_rapid_scope_creation_from_threads_leaves_nothing(dbscope, dbscope_scope):
    def one(i):
        scope_id = dbscope.create_scope(f"rapid {i}")
        try:
            return dbscope.get_scoped_client(scope_id).execute("SELECT ? AS test_id", [i]).rows[0]["test_id"]
        finally:
            dbscope.destroy_scope(scope_id)

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(one, range(20))) == list(range(20))

    stats = dbscope.get_stats()
    assert [s["id"] for s in stats["scopes"]] == [dbscope_scope.id]


def test_a_write_lock_in_one_scope_does_not_block_another(dbscope, db):
    first = dbscope.create_scope("holds a write lock")
    second = dbscope.create_scope("writes meanwhile")
    try:
        holder = dbscope.get_scoped_client(first)
        with holder.transaction() as tx:
            tx.execute("INSERT INTO logs (message) VALUES ('locked')")  # the write lock of the first database
            other = dbscope.get_scoped_client(second)
            other.execute("INSERT INTO logs (message) VALUES ('not blocked')")
            db.execute("INSERT INTO logs (message) VALUES ('nor is the test')")
            assert other.execute("SELECT message FROM logs").scalar() == "not blocked"
    finally:
        dbscope.destroy_scope(first)
        dbscope.destroy_scope(second)


def test_emergency_cleanup_releases_a_scope_and_its_clients(dbscope, dbscope_scope):
    scope_ids = [dbscope.create_scope(f"emergency {i}") for i in range(2)]
    clients = [dbscope.get_scoped_client(s) for s in scope_ids]
    before = dbscope.metrics["emergency_cleanups"]

    assert all(dbscope.emergency_cleanup(s) for s in scope_ids)

    assert dbscope.metrics["emergency_cleanups"] == before + 2
    assert dbscope.get_stats()["active_scope_count"] == 1  # the test's own
    for client in clients:
        with pytest.raises(ClientClosedError):
            client.execute("SELECT 1")
    recovered = dbscope.create_scope("after the emergency")
    try:
        assert dbscope.get_scoped_client(recovered).execute("SELECT 1 AS recovered").scalar() == 1
    finally:
        dbscope.destroy_scope(recovered)
