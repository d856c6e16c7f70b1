"""The PostgreSQL server dbscope's own tests use, and a fixture that finds it.

Point DBSCOPE_TEST_PG_URL at a server (default: postgres on 127.0.0.1:5432). Without
one, PostgreSQL tests skip with the reason; under CI=true a skip fails (conftest.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("DBSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_unavailable_reason() -> str | None:
    """None when the test server answers, else why PostgreSQL tests cannot run."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'dbscope[postgres]'"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL server at {PG_URL} ({str(exc).strip().splitlines()[0]}); set DBSCOPE_TEST_PG_URL"
    return None


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    """The PostgreSQL server binaries for postgresql+proc://; skips (fails under CI) without them."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'dbscope[postgres]'")
    from dbscope.backends.pg_cluster import find_bindir
    from dbscope.errors import BackendUnavailableError

    try:
        return find_bindir()
    except BackendUnavailableError as exc:
        pytest.skip(f"no PostgreSQL server binaries for the throwaway cluster: {exc}")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server's maintenance URL; skips (fails under CI) when there is none."""
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL: {reason}")
    return PG_URL


@pytest.fixture(scope="session", autouse=True)
def drop_templates_built_by_this_session() -> Iterator[None]:
    """At the end, drop the PostgreSQL templates this session's tests built on this machine.

    dbscope keeps templates on the server on purpose (later runs reuse them), but many of
    these tests build one-off schemas; without this, every CI run on a long-lived server
    would add dozens of dbscope_tpl_* databases. Only templates whose owner record says
    they were built on this machine since this session started are dropped, through
    dbscope's own checked drop.
    """
    started = time.time()
    yield
    if pg_unavailable_reason() is not None:
        return
    import psycopg

    from dbscope.backends.pg_owner import (
        REGISTRY_DB,
        STALE_AFTER_S,
        TEMPLATE_PREFIX,
        OwnerRecord,
        drop_unused_template,
        plan_garbage,
        this_machine,
    )
    from dbscope.errors import BackendUnavailableError

    machine = this_machine()
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
        # never one a live run still clones from: another test session on this machine (a CI run
        # beside a developer's) may have built the same template since this one started
        try:
            registry = psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/" + REGISTRY_DB, autocommit=True)
        except psycopg.OperationalError:  # no registry: no run of dbscope ever used this server
            return
        with registry:
            unused = {item.name for item in plan_garbage(conn, registry, templates=True) if item.action == "drop"}
            rows = conn.execute(
                "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
                "WHERE starts_with(d.datname, %s)",
                [TEMPLATE_PREFIX],
            ).fetchall()
            for name, comment in rows:
                record = OwnerRecord.from_comment(comment)
                mine = (
                    record and record.host == machine.host and record.boot == machine.boot and record.created >= started
                )
                if mine and name in unused:
                    try:  # judged again under its build lock: a run may have started using it since
                        drop_unused_template(conn, registry, name, stale_after_s=STALE_AFTER_S)
                    except (psycopg.Error, BackendUnavailableError):
                        pass  # in use, gone meanwhile, or the server refused: it stays, like any cached template


def drop_if_kept(url: str, name: str) -> None:
    """Drop ``name`` if its owner record says dbscope kept it for a failed test; nothing else.

    Not ``dbscope gc --kept --yes``: on a shared server that drops every kept database,
    other people's evidence too.
    """
    import psycopg

    from dbscope.backends.pg_owner import OwnerRecord, drop_checked

    with psycopg.connect(url, autocommit=True) as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        record = OwnerRecord.from_comment(comment[0]) if comment else None
        if record is not None and record.is_kept:
            drop_checked(conn, name)
