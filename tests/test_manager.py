"""IsolationManager: its public API (scopes, current test, scoped clients, stats), metrics, resets
and cleanup that cannot be skipped."""

from __future__ import annotations

import importlib
import os
import re
import sqlite3
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbscope import ClientClosedError, ConfigError, DbscopeError, IsolationManager, MigrationError, ScopeError
from dbscope.backends.sqlite import SQLiteFileDatabase
from dbscope.manager import _close_quietly

USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);"


@pytest.fixture
def migrations(tmp_path: Path) -> str:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_users.sql").write_text(USERS)
    return str(directory)


@pytest.fixture
def manager(migrations: str) -> Iterator[IsolationManager]:
    with IsolationManager("sqlite://", migrations=migrations, env_vars=["DBSCOPE_TEST_URL"]) as m:
        yield m


class Hanging:
    """A resource whose close() blocks until released: a close that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = False

    def close(self) -> None:
        self.release.wait(30)
        self.closed = True


class Exploding:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        raise OSError("driver error during close")


class Recording:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_create_scope_returns_an_id_in_the_seed_format(manager: IsolationManager) -> None:
    scope_id = manager.create_scope("checkout works")

    assert re.fullmatch(r"test_\d{13}_[0-9a-f]{8}", scope_id)
    assert manager.get_stats()["active_scope_count"] == 1
    assert manager.destroy_scope(scope_id) is True
    assert manager.active_scopes == {}


def test_scopes_are_isolated_from_each_other(manager: IsolationManager) -> None:
    first = manager.get_scoped_client(manager.create_scope("first"))
    second = manager.get_scoped_client(manager.create_scope("second"))
    first.execute("INSERT INTO users (name, email) VALUES ('a', 'same@example.com')")
    second.execute("INSERT INTO users (name, email) VALUES ('b', 'same@example.com')")

    assert first.execute("SELECT name FROM users").rows == [("a",)]
    assert second.execute("SELECT name FROM users").rows == [("b",)]


def test_ensure_test_isolation_and_complete_test_follow_the_seed(manager: IsolationManager) -> None:
    manager.initialize_test_mode()
    first = manager.ensure_test_isolation("first test")
    manager.get_scoped_client().execute("INSERT INTO users (name) VALUES ('x')")
    second = manager.ensure_test_isolation("second test")  # ends the first one

    assert first not in manager.active_scopes
    assert manager.get_stats()["current_test_id"] == second
    assert manager.get_scoped_client().execute("SELECT COUNT(*) FROM users").scalar() == 0
    assert manager.complete_test() is True
    assert manager.complete_test() is False  # nothing current any more


def test_get_stats_and_metrics_count_what_happened(manager: IsolationManager) -> None:
    with manager.scope("counted") as scope:
        scope.client()
        scope.client()
        stats = manager.get_stats()
        assert stats["active_connection_count"] == 2
        assert stats["scopes"][0]["test_name"] == "counted"
        assert stats["scopes"][0]["migration_completed"] is True

    metrics = manager.metrics
    assert metrics["scopes_created"] == metrics["scopes_destroyed"] == 1
    assert metrics["connections_created"] == metrics["connections_closed"] == 2
    assert metrics["average_cleanup_ms"] > 0
    assert metrics["emergency_cleanups"] == 0


def test_scope_sets_its_env_vars_and_restores_them(manager: IsolationManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBSCOPE_TEST_URL", "before")
    with manager.scope("env") as scope:
        assert os.environ["DBSCOPE_TEST_URL"] == scope.url()
    assert os.environ["DBSCOPE_TEST_URL"] == "before"


def test_a_variable_that_already_holds_the_scopes_address_is_still_restored_after_a_test_changed_it(
    migrations: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reset's database is in the environment before the scope starts (nothing to set then); a test
    that changes or deletes the variable still finds it put back at the scope's end."""
    monkeypatch.delenv("DBSCOPE_TEST_URL", raising=False)
    with IsolationManager(
        "sqlite://", migrations=migrations, env_vars=["DBSCOPE_TEST_URL"], strategy="reset"
    ) as manager:
        address = manager.prepare()["DBSCOPE_TEST_URL"]
        monkeypatch.setenv("DBSCOPE_TEST_URL", address)
        with manager.scope("changes it") as scope:
            assert os.environ["DBSCOPE_TEST_URL"] == scope.url() == address
            os.environ["DBSCOPE_TEST_URL"] = "sqlite:///elsewhere"
        assert os.environ["DBSCOPE_TEST_URL"] == address
        with manager.scope("deletes it"):
            del os.environ["DBSCOPE_TEST_URL"]
        assert os.environ["DBSCOPE_TEST_URL"] == address
    monkeypatch.setenv("DBSCOPE_TEST_URL", "before")
    with IsolationManager("sqlite://", migrations=migrations, env_vars=["DBSCOPE_TEST_URL"]) as manager:
        with manager.scope("clone"):
            os.environ["DBSCOPE_TEST_URL"] = "changed"
    assert os.environ["DBSCOPE_TEST_URL"] == "before"


def test_scope_ids_are_unique_even_when_a_test_calls_random_seed(manager: IsolationManager) -> None:
    import random

    ids = set()
    for _ in range(20):
        random.seed(0)
        with manager.scope("seeded") as scope:
            ids.add(scope.id)
    assert len(ids) == 20


def test_unknown_scopes_are_errors_that_say_so(manager: IsolationManager) -> None:
    with pytest.raises(ScopeError, match="test scope test_0_nothing not found"):
        manager.get_scoped_client("test_0_nothing")
    with pytest.raises(ScopeError, match="no current test scope"):
        manager.get_scoped_client()
    assert manager.destroy_scope("test_0_nothing") is False


def test_a_client_used_after_its_scope_ended_names_scope_and_test(manager: IsolationManager) -> None:
    with manager.scope("the short one") as scope:
        client = scope.client()
    with pytest.raises(ClientClosedError, match=rf"scope {scope.id} \(test 'the short one'\).*closed by dbscope"):
        client.execute("SELECT 1")


def test_a_close_that_hangs_is_bounded_and_the_rest_still_close(migrations: str) -> None:
    hanging, after = Hanging(), Recording()
    with IsolationManager("sqlite://", migrations=migrations, close_timeout=0.2) as manager:
        scope_id = manager.create_scope("hangs")
        scope = manager.get_scope(scope_id)
        client = scope.client()
        scope.track(hanging)
        scope.track(after)

        assert manager.destroy_scope(scope_id) is False
        assert after.closed and client.closed
        assert manager.active_scopes == {}
        assert manager.global_connection_registry == set()
        assert manager.metrics["cleanup_failures"] == 1
    hanging.release.set()


def test_a_driver_error_during_cleanup_does_not_stop_the_rest(manager: IsolationManager) -> None:
    scope_id = manager.create_scope("explodes")
    scope = manager.get_scope(scope_id)
    first, exploding, last = Recording(), Exploding(), Recording()
    for resource in (first, exploding, last):
        scope.track(resource)

    assert manager.destroy_scope(scope_id) is False
    assert first.closed and last.closed
    assert manager.get_stats()["active_scope_count"] == 0


def test_a_failing_drop_falls_back_to_emergency_cleanup_that_leaves_nothing(tmp_path: Path, migrations: str) -> None:
    with IsolationManager(f"sqlite:///{tmp_path}/dbs", migrations=migrations) as manager:
        scope_id = manager.create_scope("drop fails")
        scope = manager.get_scope(scope_id)
        client = scope.client()
        assert isinstance(scope.database, SQLiteFileDatabase)
        path = scope.database.path
        # a real fault: the database file is replaced by a directory, so unlinking it fails
        os.unlink(path)
        os.mkdir(path)

        assert manager.destroy_scope(scope_id) is False
        assert client.closed
        assert manager.active_scopes == {}
        assert manager.metrics["emergency_cleanups"] == 1
        os.rmdir(path)


def test_emergency_cleanup_of_everything_closes_all_scopes(manager: IsolationManager) -> None:
    clients = [manager.get_scoped_client(manager.create_scope(f"t{i}")) for i in range(5)]
    manager.current_test_id = next(iter(manager.active_scopes))

    assert manager.emergency_cleanup() is True
    assert all(c.closed for c in clients)
    assert manager.get_stats() == {
        "is_test_mode": False,
        "current_test_id": None,
        "active_scope_count": 0,
        "active_connection_count": 0,
        "scopes": [],
    }
    assert manager.metrics["emergency_cleanups"] == 1


def test_emergency_cleanup_of_one_scope_leaves_the_others(manager: IsolationManager) -> None:
    keep, drop = manager.create_scope("keep"), manager.create_scope("drop")

    assert manager.emergency_cleanup(drop) is True
    assert list(manager.active_scopes) == [keep]


def test_clear_module_cache_purges_named_modules_and_submodules(migrations: str) -> None:
    for name in ("fakeapp_db", "fakeapp_db.engine", "fakeapp_dbx"):
        sys.modules[name] = types.ModuleType(name)
    try:
        with IsolationManager("sqlite://", migrations=migrations, reset_modules=["fakeapp_db"]) as manager:
            assert manager.clear_module_cache() == 2
            assert "fakeapp_db" not in sys.modules and "fakeapp_db.engine" not in sys.modules
            assert "fakeapp_dbx" in sys.modules
            assert manager.metrics["modules_cleared"] == 2
    finally:
        sys.modules.pop("fakeapp_dbx", None)


def test_reset_hooks_run_at_both_boundaries(migrations: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hookmod.py").write_text("CALLS = []\ndef reset():\n    CALLS.append(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hookmod = importlib.import_module("hookmod")  # written above, so unknown to mypy

    with IsolationManager("sqlite://", migrations=migrations, reset_hooks=["hookmod:reset"]) as manager:
        with manager.scope("hooked"):
            assert hookmod.CALLS == [1]
        assert hookmod.CALLS == [1, 1]


def test_a_reset_hook_that_cannot_be_loaded_is_a_config_error(migrations: str) -> None:
    with IsolationManager("sqlite://", migrations=migrations, reset_hooks=["no_such_module_x:reset"]) as manager:
        with pytest.raises(ConfigError, match="dbscope_reset_hooks: cannot load 'no_such_module_x:reset'"):
            manager.create_scope("t")


def test_a_broken_migration_raises_once_and_then_the_same_error_quickly(tmp_path: Path) -> None:
    (tmp_path / "0001.sql").write_text("CREATE TABLE a (x INTEGER);\nINSERT INTO nope VALUES (1);")
    with IsolationManager("sqlite://", migrations=str(tmp_path)) as manager:
        with pytest.raises(MigrationError, match=r"0001.sql, line 2 \(statement 2\): no such table: nope"):
            manager.create_scope("first")
        with pytest.raises(MigrationError, match="failed earlier in this session"):
            manager.create_scope("second")
        assert manager.active_scopes == {}


def test_scope_options_override_the_settings(manager: IsolationManager, tmp_path: Path) -> None:
    other = tmp_path / "other.sql"
    other.write_text("CREATE TABLE other (x INTEGER);")
    with manager.scope("other schema", migrations=str(other)) as scope:
        tables = scope.client().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [r[0] for r in tables] == ["other"]
    with pytest.raises(ConfigError, match="unknown scope option"):
        manager.create_scope("bad", colour="blue")


def test_a_closed_manager_refuses_new_scopes(migrations: str) -> None:
    manager = IsolationManager("sqlite://", migrations=migrations)
    manager.close()
    manager.close()  # idempotent
    with pytest.raises(DbscopeError, match="IsolationManager was closed"):
        manager.create_scope("late")


def test_close_destroys_scopes_still_open(migrations: str) -> None:
    manager = IsolationManager("sqlite://", migrations=migrations)
    client = manager.get_scoped_client(manager.create_scope("left open"))
    manager.close()

    assert client.closed
    assert manager.metrics["scopes_destroyed"] == 1


def test_leaked_connections_are_counted_and_the_database_still_goes(manager: IsolationManager) -> None:
    with manager.scope("leaky") as scope:
        leaked = sqlite3.connect(scope.url("dsn"), uri=True)
    assert scope.leaked_connections == 1
    assert manager.metrics["connections_leaked"] == 1
    leaked.close()


def test_close_quietly_bounds_any_resource() -> None:
    hanging = Hanging()
    assert _close_quietly(hanging, 0.1) is False
    hanging.release.set()
    assert _close_quietly(Recording(), 1) is True
    assert _close_quietly(Exploding(), 1) is False


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown IsolationManager settings: colour"):
        IsolationManager("sqlite://", colour="blue")


def test_scope_options_are_parsed_like_settings(manager: IsolationManager) -> None:
    scope = manager.get_scope(manager.create_scope("parsed", strategy="Clone", close_timeout="2"))

    assert (scope.options.strategy, scope.options.close_timeout) == ("clone", 2.0)
    assert scope.strategy_state is None  # a clone, not the worker's shared database
    expected = r"dbscope_close_timeout = '-1' \(from dbscope_close_timeout in scope options\) is not valid"
    with pytest.raises(ConfigError, match=expected):
        manager.create_scope("bad", close_timeout=-1)
