"""The manager without pytest fixtures: the library API, one current test at a time."""

from pathlib import Path

from dbscope import IsolationManager

MIGRATIONS = Path(__file__).parent.parent / "migrations"


def test_scopes_from_the_library_api():
    with IsolationManager("sqlite://", migrations=str(MIGRATIONS)) as manager:
        manager.initialize_test_mode()
        scope_id = manager.ensure_test_isolation("checkout works")
        db = manager.get_scoped_client()
        db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Ana", "ana@example.com"])
        stats = manager.get_stats()
        assert stats["current_test_id"] == scope_id
        assert stats["active_connection_count"] == 1

        assert manager.complete_test() is True
        assert manager.metrics["scopes_destroyed"] == 1
