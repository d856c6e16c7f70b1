"""The MariaDB/MySQL server dbscope's own tests use, and a fixture that finds it.

Point DBSCOPE_TEST_MARIADB_URL at a server (default: root on 127.0.0.1:3306). Without
one, MariaDB tests skip with the reason; under CI=true a skip fails (conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

MARIADB_URL = os.environ.get("DBSCOPE_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/")


def connect_args(url: str = MARIADB_URL) -> dict[str, Any]:
    """``pymysql.connect`` arguments for a ``mysql://`` URL (no TLS: the server is on this machine)."""
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
        "ssl_disabled": True,
        "autocommit": True,
    }


def mariadb_unavailable_reason() -> str | None:
    """None when the test server answers, else why MariaDB tests cannot run."""
    try:
        import pymysql
    except ImportError:
        return "PyMySQL is not installed: pip install 'dbscope[mysql]'"
    try:
        conn = pymysql.connect(**connect_args(), connect_timeout=3)
        conn.close()
    except Exception as exc:
        return f"no MariaDB/MySQL server at {MARIADB_URL} ({exc}); set DBSCOPE_TEST_MARIADB_URL"
    return None


def mariadb_url_or_skip() -> str:
    """The test server's URL; skips (fails under CI) when there is none."""
    reason = mariadb_unavailable_reason()
    if reason:
        pytest.skip(f"MariaDB: {reason}")
    return MARIADB_URL


def server_url() -> Iterator[str]:
    """For a fixture: the test server's URL; after it, the templates built on this machine meanwhile are dropped."""
    url = mariadb_url_or_skip()
    started = time.time()
    yield url
    drop_templates_built_since(started)


def drop_templates_built_since(started: float) -> None:
    """Drop the templates built on this machine since ``started`` that no live run uses (dbscope's checked drop)."""
    import pymysql

    from dbscope.backends.mariadb_owner import OwnerRecord, drop_unused_template, plan_garbage
    from dbscope.errors import BackendUnavailableError

    conn = pymysql.connect(**connect_args())
    try:
        unused = {item.name for item in plan_garbage(conn, templates=True) if item.action == "drop"}
        with conn.cursor() as cursor:
            cursor.execute("SELECT name, record FROM dbscope_registry.owners WHERE name LIKE 'dbscope\\_tpl\\_%'")
            for name, text in cursor.fetchall():
                record = OwnerRecord.from_json(text)
                if record is not None and record.created >= started and name in unused:
                    with contextlib.suppress(BackendUnavailableError):  # a run took it up meanwhile
                        drop_unused_template(conn, name)
    except pymysql.Error:
        pass  # no registry yet, or the server went away: the templates stay, as cached ones do
    finally:
        conn.close()


def drop_if_kept(name: str) -> None:
    """Drop ``name`` if its owner record says dbscope kept it for a failed test; nothing else."""
    import pymysql

    from dbscope.backends.mariadb_owner import drop_checked

    conn = pymysql.connect(**connect_args())
    try:
        drop_checked(conn, name, allow_kinds=("kept",))
    finally:
        conn.close()


def mariadbd_or_skip() -> None:
    """Skips (fails under CI) unless MariaDB's server programs and PyMySQL are here (for mysql+proc://)."""
    from dbscope import BackendUnavailableError
    from dbscope.backends.mariadb_proc import find_programs

    pytest.importorskip("pymysql", reason="PyMySQL is not installed: pip install 'dbscope[mysql]'")
    try:
        find_programs()
    except BackendUnavailableError as exc:
        pytest.skip(f"MariaDB: {exc}")
