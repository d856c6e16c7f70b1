"""dbscope.django, end to end: the example Django project (examples/django_project) copied into
a sandbox and run by pytest in a subprocess of this venv, with pytest-django alone and with
``--dbscope-django``, on SQLite and on PostgreSQL.

pytest-django defines a ``db`` fixture as dbscope does, so these tests run only in a venv
of their own that has Django and pytest-django (``.venv-django``); anywhere else they are
skipped with the reason. PostgreSQL: DBSCOPE_TEST_PG_URL, as for the rest of the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

HAVE_DJANGO = importlib.util.find_spec("django") is not None and importlib.util.find_spec("pytest_django") is not None
pytestmark = pytest.mark.skipif(
    not HAVE_DJANGO,
    reason="dbscope.django's tests need Django and pytest-django, which live in a venv of their own "
    "(.venv-django: pytest-django's db fixture would replace dbscope's in the main venv)",
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_project"
PG_URL = urlsplit(os.environ.get("DBSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
MARIADB_URL = urlsplit(os.environ.get("DBSCOPE_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/"))
ENGINES = ["sqlite", "postgresql"]
#: the tests that run on MariaDB (mysql) too: the example suite, transactional restores, leaks
ALL_ENGINES = [*ENGINES, "mysql"]


def _pg_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(PG_URL.geturl(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {PG_URL.hostname}:{PG_URL.port} ({str(exc).strip().splitlines()[0]})"


def _mariadb_reason() -> str | None:
    try:
        import pymysql
    except ImportError:
        return "PyMySQL is not installed"
    try:
        _mariadb().close()
        return None
    except pymysql.Error as exc:
        return f"no MariaDB/MySQL server at {MARIADB_URL.hostname}:{MARIADB_URL.port} ({exc})"


def _mariadb() -> Any:
    import pymysql

    return pymysql.connect(
        host=MARIADB_URL.hostname or "127.0.0.1",
        port=MARIADB_URL.port or 3306,
        user=MARIADB_URL.username or "root",
        password=MARIADB_URL.password or "",
        autocommit=True,
        connect_timeout=3,
    )


def _mariadb_databases(like: str) -> list[str]:
    conn = _mariadb()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s", [like])
            return sorted(str(r[0]) for r in cursor.fetchall())
    finally:
        conn.close()


def _mariadb_templates_of(prefix: str) -> list[str]:
    """The templates dbscope.django built on MariaDB for the settings' databases named ``prefix...``."""
    conn = _mariadb()
    found = []
    try:
        with conn.cursor() as cursor:
            for name in _mariadb_databases("test\\_dbscope\\_tpl\\_%"):
                cursor.execute(
                    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = 'dbscope_django_template'",
                    [name],
                )
                if not cursor.fetchall():
                    continue
                cursor.execute(f"SELECT settings_database FROM `{name}`.dbscope_django_template")
                if any(str(row[0]).startswith(prefix) for row in cursor.fetchall()):
                    found.append(name)
    finally:
        conn.close()
    return found


def _pg_databases(prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{prefix}%"]).fetchall()
    return sorted(str(r[0]) for r in rows)


def _pg_templates_of(prefix: str) -> list[str]:
    """The templates dbscope.django built for the settings' databases named ``prefix...``."""
    import psycopg

    with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.datname FROM pg_database d JOIN pg_shdescription s ON s.objoid = d.oid "
            "WHERE s.description LIKE %s",
            [f"dbscope.django template of % ({prefix}%"],
        ).fetchall()
    return sorted(str(r[0]) for r in rows)


class Sandbox:
    """A copy of the example project with databases of its own: runs pytest in it."""

    def __init__(self, root: Path, engine: str) -> None:
        self.root = root
        self.engine = engine
        self.prefix = f"djt{uuid.uuid4().hex[:10]}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DBSCOPE_", "DJANGO_"))}
        env.update(DJANGO_DB=self.engine, DJANGO_DB_PREFIX=self.prefix, PYTHONDONTWRITEBYTECODE="1")
        if self.engine == "postgresql":
            env.update(
                DJANGO_DB_HOST=PG_URL.hostname or "127.0.0.1",
                DJANGO_DB_PORT=str(PG_URL.port or 5432),
                DJANGO_DB_USER=PG_URL.username or "postgres",
            )
        elif self.engine == "mysql":
            env.update(
                DJANGO_DB_HOST=MARIADB_URL.hostname or "127.0.0.1",
                DJANGO_DB_PORT=str(MARIADB_URL.port or 3306),
                DJANGO_DB_USER=MARIADB_URL.username or "root",
                DJANGO_DB_PASSWORD=MARIADB_URL.password or "",
            )
        return env

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=self.root,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        return result

    def write(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(text)


def _passed(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"(\d+) passed", result.stdout)
    return int(match.group(1)) if match else 0


def _summary(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The isolation report's lines about the Django test databases (one per alias, per worker)."""
    return re.findall(r"^  (?:\[gw\d\] )?\w+ \((?:sqlite|postgresql|mysql)\): .*$", result.stdout, re.MULTILINE)


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(params=ENGINES)
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    engine = str(request.param)
    reason = _pg_reason() if engine == "postgresql" else _mariadb_reason() if engine == "mysql" else None
    if reason:
        pytest.skip(reason)
    shutil.copytree(
        EXAMPLE, tmp_path / "project", ignore=shutil.ignore_patterns(".dbscope", "__pycache__", "*.sqlite3")
    )
    box = Sandbox(tmp_path / "project", engine)
    yield box
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:  # the templates this sandbox built
            for name in _pg_templates_of(box.prefix):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif engine == "mysql":
        conn = _mariadb()
        try:
            with conn.cursor() as cursor:
                for name in _mariadb_templates_of(box.prefix):
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.mark.parametrize("sandbox", ALL_ENGINES, indirect=True)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_example_suite_passes_with_pytest_django_alone_and_with_dbscope(
    sandbox: Sandbox, workers: list[str]
) -> None:
    alone = sandbox.run("-p", "no:dbscope", *workers)
    assert alone.returncode == 0, alone.stdout[-3000:]
    ours = sandbox.run("--dbscope-django", "--dbscope-report=report.json", "--dbscope-fail-on-leak", *workers)
    assert ours.returncode == 0, ours.stdout[-3000:]
    assert _passed(alone) == _passed(ours) >= 40
    lines = _summary(ours)
    assert len(lines) == (4 if workers else 2), ours.stdout[-2000:]  # two aliases, per worker
    assert all("transactional restores" in line for line in lines)
    # the isolation report covers the Django tests: Django's own connections (closed and opened
    # again after every transactional test) are never a leak
    report = _report(sandbox.root / "report.json")
    summary = report["summary"]
    assert summary["tests"] == _passed(ours) and summary["connection_leaks"] == 0, summary
    isolated = [test for test in report["tests"] if test["scopes"]]
    assert len(isolated) >= 40 and all(test["scope_ids"][0].startswith("django:") for test in isolated)
    assert all(test["teardown_ms"] > 0 for test in isolated)
    rows = report["django"]
    assert sorted((row["worker"], row["alias"]) for row in rows) == sorted(
        (worker, alias) for worker in (["gw0", "gw1"] if workers else ["main"]) for alias in ("default", "other")
    )
    assert sum(row["restores"] for row in rows) >= 10  # the transactional tests, restored instead of flushed
    if sandbox.engine == "postgresql":  # nothing left but the templates; the settings' databases never made
        left = _pg_databases(sandbox.prefix)
        assert left == [], left
    elif sandbox.engine == "mysql":
        left = _mariadb_databases(f"%{sandbox.prefix}%")
        assert left == [], left
    else:
        assert not list(sandbox.root.glob("*.sqlite3")), "a database the settings name was created"


@pytest.mark.parametrize("sandbox", ALL_ENGINES, indirect=True)
def test_a_second_run_reuses_the_templates_and_a_new_migration_rebuilds_them(sandbox: Sandbox) -> None:
    first = sandbox.run("--dbscope-django", "tests/test_catalog.py")
    second = sandbox.run("--dbscope-django", "tests/test_catalog.py")
    assert first.returncode == 0 and second.returncode == 0, first.stdout[-2000:] + second.stdout[-2000:]
    assert all("template built" in line for line in _summary(first)), first.stdout[-2000:]
    assert all("template reused" in line for line in _summary(second)), second.stdout[-2000:]

    # a migration added between runs: a new column and a data change, no --create-db needed
    sandbox.write(
        "catalog/migrations/0003_category_slug.py",
        "from django.db import migrations, models\n\n\n"
        "def fill(apps, schema_editor):\n"
        "    Category = apps.get_model('catalog', 'Category')\n"
        "    for c in Category.objects.using(schema_editor.connection.alias).all():\n"
        "        c.slug = c.name.upper()\n"
        "        c.save()\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('catalog', '0002_seed_categories')]\n"
        "    operations = [\n"
        "        migrations.AddField('category', 'slug', models.CharField(max_length=50, default='')),\n"
        "        migrations.RunPython(fill, migrations.RunPython.noop),\n"
        "    ]\n",
    )
    models = (sandbox.root / "catalog" / "models.py").read_text()
    sandbox.write(
        "catalog/models.py",
        models.replace(
            "    name = models.CharField(max_length=50, unique=True)\n",
            "    name = models.CharField(max_length=50, unique=True)\n"
            "    slug = models.CharField(max_length=50, default='')\n",
            1,
        ),
    )
    sandbox.write(
        "tests/test_slug.py",
        "from catalog.models import Category\n\n\n"
        "def test_the_new_migration_ran(db):\n"
        "    assert sorted(Category.objects.values_list('slug', flat=True)) == ['BOOKS', 'GAMES', 'MUSIC']\n",
    )
    third = sandbox.run("--dbscope-django", "tests/test_catalog.py", "tests/test_slug.py")
    assert third.returncode == 0, third.stdout[-3000:]
    default = [line for line in _summary(third) if line.lstrip().startswith("default")]
    assert default and "template built" in default[0], third.stdout[-2000:]
    # the fingerprint covers every installed app's migrations: the "other" alias's template is new too
    assert all("template built" in line for line in _summary(third)), third.stdout[-2000:]


# PostgreSQL only: pytest-django's --reuse-db keeps nothing on SQLite (its test database is in memory)
@pytest.mark.parametrize("sandbox", ["postgresql"], indirect=True)
def test_reuse_db_keeps_a_stale_data_migration_and_dbscope_does_not(sandbox: Sandbox) -> None:
    sandbox.write(
        "tests/test_four.py",
        "from catalog.models import Category\n\n\n"
        "def test_four_categories(db):\n"
        "    assert Category.objects.count() == 4\n",
    )
    migration = sandbox.root / "catalog" / "migrations" / "0002_seed_categories.py"
    warm = sandbox.run("-p", "no:dbscope", "--reuse-db", "tests/test_catalog.py")
    assert warm.returncode == 0, warm.stdout[-2000:]
    migration.write_text(
        migration.read_text().replace(
            'CATEGORIES = ["books", "games", "music"]', 'CATEGORIES = ["books", "films", "games", "music"]'
        )
    )
    stale = sandbox.run("-p", "no:dbscope", "--reuse-db", "tests/test_four.py")
    assert stale.returncode == 1 and "assert 3 == 4" in stale.stdout, stale.stdout[-2000:]
    ours = sandbox.run("--dbscope-django", "tests/test_four.py")
    assert ours.returncode == 0, ours.stdout[-2000:]
    import psycopg

    with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:  # pytest-django kept it (--reuse-db)
        conn.execute(f'DROP DATABASE IF EXISTS "test_{sandbox.prefix}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "test_{sandbox.prefix}_audit" WITH (FORCE)')


TRANSACTIONAL = """
import pytest
from catalog.models import Category


@pytest.mark.django_db(transaction=True)
def test_1_deletes_every_category():
    Category.objects.all().delete()
    assert Category.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_2_the_data_migrations_rows_are_back():
    assert Category.objects.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_3_serialized_rollback_is_accepted():
    assert Category.objects.count() == 3
"""


@pytest.mark.parametrize("sandbox", ALL_ENGINES, indirect=True)
def test_a_transactional_test_is_restored_from_the_template_not_flushed(sandbox: Sandbox) -> None:
    sandbox.write("tests/test_restore.py", TRANSACTIONAL)
    ours = sandbox.run("--dbscope-django", "-p", "no:randomly", "tests/test_restore.py")
    assert ours.returncode == 0, ours.stdout[-3000:]
    assert "3 transactional restores" in ours.stdout
    # pytest-django's flush empties the tables the data migration filled, and its
    # serialized_rollback collides with the content types the flush's post_migrate made again
    alone = sandbox.run("-p", "no:dbscope", "-p", "no:randomly", "tests/test_restore.py")
    assert alone.returncode == 1 and "test_2_the_data_migrations_rows_are_back" in alone.stdout


# Run in this order (-p no:randomly), serially: each test reads what the restore after the previous one did.
PARTIAL = """
import psycopg
import pytest
from django.db import connection

from accounts.models import User
from catalog.models import Category, Product
from dbscope.django import MADE_KEY

CATEGORY, PRODUCT, ORDERLINE, USER = (
    ("public", "catalog_category"), ("public", "catalog_product"), ("public", "catalog_orderline"),
    ("public", "accounts_user"),
)
AT_START = {}


def another_connection():
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"], autocommit=True
    )


def category_sequence():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sequence_last_value('catalog_category_id_seq')")
        return cursor.fetchone()[0]


def last_restore(request):
    default = request.config.stash[MADE_KEY]["default"]
    return default.last_restore, default.stats


@pytest.mark.django_db(transaction=True)
def test_1_writes_a_table_and_another_connection_writes_another(request):
    assert last_restore(request)[0] is None  # the first test: no restore yet
    AT_START["sequence"] = category_sequence()
    Category.objects.create(name="written")
    with another_connection() as other:  # committed by a session that is not Django's
        other.execute("UPDATE accounts_user SET display_name = 'changed' WHERE username = 'system'")


@pytest.mark.django_db(transaction=True)
def test_2_only_those_two_tables_were_restored_and_they_are_the_templates_again(request):
    done, stats = last_restore(request)
    assert done.partial and not done.dropped
    assert sorted(done.tables) == sorted([CATEGORY, USER])  # of the template's tables, only those two
    assert len(done.tables) < 10 and stats.partial_restores == stats.restores == 1
    assert sorted(Category.objects.values_list("name", flat=True)) == ["books", "games", "music"]
    assert User.objects.get(username="system").display_name == "System"
    assert category_sequence() == AT_START["sequence"]  # the sequence the insert moved is back
    Product.objects.create(category=Category.objects.get(name="books"), name="Written", price=1)


@pytest.mark.django_db(transaction=True)
def test_3_only_the_product_table_was_restored(request):
    done, stats = last_restore(request)
    assert done.partial and done.tables == (PRODUCT,), done.tables
    assert not Product.objects.exists() and stats.partial_restores == stats.restores == 2
    Category.objects.filter(name="music").update(name="changed")


@pytest.mark.django_db(transaction=True)
def test_4_a_restore_in_one_call_then_ddl_and_a_truncate_cascade(request):
    done, _stats = last_restore(request)
    assert done.partial and done.one_call and done.tables == (CATEGORY,), done  # the third: one round trip
    assert Category.objects.filter(name="music").exists()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE made_by_a_test (id int)")
        cursor.execute("INSERT INTO made_by_a_test VALUES (1)")
        cursor.execute("TRUNCATE catalog_category CASCADE")  # empties the product and order line tables too
    assert not Category.objects.exists()


@pytest.mark.django_db(transaction=True)  # pytest-django runs the db tests first: this one after test_4
def test_5_the_ddl_is_undone_and_the_truncated_tables_are_back(request):
    done, stats = last_restore(request)
    assert done.partial and done.dropped and not done.one_call
    assert {CATEGORY, PRODUCT, ORDERLINE} <= set(done.tables) and USER not in done.tables, done.tables
    assert stats.partial_restores == stats.restores == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('made_by_a_test')")
        assert cursor.fetchone()[0] is None
    assert sorted(Category.objects.values_list("name", flat=True)) == ["books", "games", "music"]
    assert User.objects.filter(username="system").exists()
"""


@pytest.mark.parametrize("sandbox", ["postgresql"], indirect=True)
def test_a_postgresql_restore_restores_only_the_tables_written_by_any_connection(sandbox: Sandbox) -> None:
    sandbox.write("tests/test_partial.py", PARTIAL)
    ours = sandbox.run("--dbscope-django", "-p", "no:randomly", "--dbscope-report=report.json", "tests/test_partial.py")
    assert ours.returncode == 0 and _passed(ours) == 5, ours.stdout[-3000:]
    rows = {row["alias"]: row for row in _report(sandbox.root / "report.json")["django"]}
    default = rows["default"]
    assert default["restores"] == default["partial_restores"] == 5, default
    # 2 + 1 + 1 + the three truncated + none after a test that wrote nothing: not 5 x every table
    assert default["tables_restored"] == 7, default


@pytest.mark.parametrize("sandbox", ["postgresql"], indirect=True)
def test_a_role_that_is_not_superuser_restores_only_the_tables_written_too(sandbox: Sandbox) -> None:
    """No event trigger counts its DDL and its restores reach the referencing tables that hold rows."""
    import psycopg
    from psycopg import sql

    role = f"{sandbox.prefix}_role"
    with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
    try:
        ours = sandbox.run(
            "--dbscope-django",
            "--dbscope-report=report.json",
            "tests/test_transactions.py",
            "tests/test_multidb.py",
            env={**sandbox.env(), "DJANGO_DB_USER": role},
        )
        assert ours.returncode == 0 and _passed(ours) >= 10, ours.stdout[-3000:]
        rows = _report(sandbox.root / "report.json")["django"]
        assert sum(row["restores"] for row in rows) >= 8, rows
        assert all(row["partial_restores"] == row["restores"] for row in rows), rows
    finally:
        with psycopg.connect(PG_URL.geturl(), autocommit=True) as conn:
            for name in _pg_templates_of(sandbox.prefix):  # its own: dropped before the role
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_with_dbscope_django_off_db_is_pytest_djangos(sandbox: Sandbox) -> None:
    sandbox.write(
        "tests/test_which_db.py",
        "from catalog.models import Category\n\n\n"
        "def test_db_is_pytest_djangos(db, request):\n"
        "    assert db is None\n"
        "    assert Category.objects.count() == 3\n"
        "    assert request.config.pluginmanager.has_plugin('dbscope-django-fixtures')\n",
    )
    result = sandbox.run("-v", "tests/test_which_db.py")  # -q -v: the header too
    assert result.returncode == 0, result.stdout[-2000:]
    assert "dbscope: pytest-django is active, so the db fixture is pytest-django's" in result.stdout


def test_dbscope_django_without_pytest_django_is_a_usage_error(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, "sqlite")
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    result = sandbox.run("-p", "no:django", "--dbscope-django")
    assert result.returncode == 4
    assert "dbscope_django is on, but pytest-django is not active" in result.stderr


def test_a_remote_database_server_is_refused(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "project", ignore=shutil.ignore_patterns(".dbscope", "__pycache__"))
    box = Sandbox(tmp_path / "project", "postgresql")
    env = {**box.env(), "DJANGO_DB_HOST": "db.example.com"}
    result = box.run("--dbscope-django", "tests/test_catalog.py", "-x", env=env)
    assert result.returncode == 1
    assert "points at 'db.example.com', which is not this machine" in result.stdout


LEAKS = """
import sqlite3
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import TestCase

from catalog.models import Category

KEPT = []  # what the leaking tests keep open past their end


def raw_connection():
    settings = connections["default"].settings_dict
    if connections["default"].vendor == "sqlite":
        return sqlite3.connect(settings["NAME"], uri=True)
    if connections["default"].vendor == "mysql":
        import pymysql

        return pymysql.connect(
            host=settings["HOST"], port=int(settings["PORT"]), user=settings["USER"], password=settings["PASSWORD"],
            database=settings["NAME"],
        )
    import psycopg

    return psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"])


def test_leaks_a_raw_connection(db):
    KEPT.append(raw_connection())
    assert Category.objects.count() == 3


def test_closes_its_raw_connection(db):
    raw_connection().close()
    assert Category.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_leaks_a_django_connection_in_a_thread_it_leaves_running():
    pool = ThreadPoolExecutor(1)
    KEPT.append(pool)
    assert pool.submit(Category.objects.count).result() == 3


@pytest.mark.django_db(transaction=True)
def test_a_django_connection_in_a_thread_that_ended_is_no_leak():
    def count():
        try:
            return Category.objects.count()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(count).result() == 3


def test_a_live_server_thread_s_connections_are_no_leak(live_server):
    with urllib.request.urlopen(live_server.url + "/categories/") as response:  # queries in the server's thread
        assert response.status == 200
    assert Category.objects.count() == 3


class TestDjangosOwnTestCase(TestCase):
    def test_leaks_in_a_django_test_case(self):
        KEPT.append(raw_connection())

    def test_djangos_own_connection_is_no_leak(self):
        assert Category.objects.count() == 3
"""
LEAKING = {
    "test_leaks_a_raw_connection",
    "test_leaks_a_django_connection_in_a_thread_it_leaves_running",
    "test_leaks_in_a_django_test_case",
}


@pytest.mark.parametrize("sandbox", ALL_ENGINES, indirect=True)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_isolation_report_names_the_django_tests_that_leak_connections(
    sandbox: Sandbox, workers: list[str]
) -> None:
    sandbox.write("tests/test_leaks.py", LEAKS)
    settings = sandbox.root / "project" / "settings.py"
    settings.write_text(settings.read_text() + 'STATIC_URL = "/static/"\n')  # live_server serves static files
    args = ("--dbscope-django", "tests/test_leaks.py", "tests/test_catalog.py", *workers)
    reported = sandbox.run(*args, "--dbscope-report=report.json", "--dbscope-html=report.html")
    assert reported.returncode == 0, reported.stdout[-3000:]  # leaks are reported; they fail the run only if asked
    report = _report(sandbox.root / "report.json")
    by_name = {test["nodeid"].rpartition("::")[2]: test for test in report["tests"]}
    leaked = {name for name, test in by_name.items() if test["connections_leaked"]}
    assert leaked == LEAKING, reported.stdout[-3000:]
    assert all(by_name[name]["connections_leaked"] == 1 for name in LEAKING)
    assert report["summary"]["connection_leaks"] == 3
    for name in LEAKING:
        warning = rf"^connection leak in tests/test_leaks.py::(\w+::)?{name}: 1 connection"
        assert re.search(warning, reported.stdout, re.M), reported.stdout[-3000:]
    # each Django test's isolation is in its record: the transaction rolled back, or the restore
    restored = by_name["test_a_django_connection_in_a_thread_that_ended_is_no_leak"]
    assert restored["scope_ids"] == ["django:default"] and restored["teardown_ms"] > 0
    assert by_name["test_database_access_without_a_mark_is_blocked"]["scopes"] == 0  # no database, no isolation
    page = (sandbox.root / "report.html").read_text()
    assert "Django test databases" in page and "test_leaks_in_a_django_test_case" in page
    shown = subprocess.run(  # the saved report, read back by the dbscope command: the same lines
        [sys.executable, "-m", "dbscope", "report", "report.json"], cwd=sandbox.root, capture_output=True, text=True
    )
    assert shown.returncode == 1, shown.stdout + shown.stderr  # it has leaks
    assert _summary(shown) == _summary(reported) and "connection leaks: 3" in shown.stdout

    failing = sandbox.run(*args, "--dbscope-fail-on-leak")
    assert failing.returncode == 1, failing.stdout[-3000:]
    assert "failing the run (--dbscope-fail-on-leak): 3 test(s) leaked" in failing.stdout
    for name in LEAKING:
        assert re.search(rf"^  tests/test_leaks.py::(\w+::)?{name}: 1 connection\(s\) left open$", failing.stdout, re.M)


def test_a_slow_django_test_is_reported(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "--dbscope-django", "tests/test_catalog.py", "-o", "dbscope_slow_test_s=0.000001", "--dbscope-report=r.json"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    report = _report(sandbox.root / "r.json")
    assert report["summary"]["slow_tests"] == report["summary"]["tests"] > 10
    assert "slow test tests/test_catalog.py::test_the_data_migration_seeded_three_categories" in result.stdout


NEW_MIGRATION = (
    "from django.db import migrations\n\n\n"
    "class Migration(migrations.Migration):\n"
    "    dependencies = [('catalog', '0002_seed_categories')]\n"
    "    operations = [migrations.RunSQL('SELECT 1', migrations.RunSQL.noop)]\n"
)
GC_INSIDE_A_RUN = """
import os
import re
import subprocess
import sys


def test_dbscope_gc_keeps_the_templates_this_run_uses(db):
    scheme, database = ("postgresql", "postgres") if os.environ["DJANGO_DB"] == "postgresql" else ("mysql", "")
    url = "{}://{}@{}:{}/{}".format(
        scheme, os.environ["DJANGO_DB_USER"], os.environ["DJANGO_DB_HOST"], os.environ["DJANGO_DB_PORT"], database
    )
    gc = subprocess.run([sys.executable, "-m", "dbscope", "gc", "--url", url], capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    database = re.escape(os.environ["DJANGO_DB_PREFIX"])  # test_catalog.py uses the default alias only
    in_use = rf"^keep test_dbscope_tpl_\\w+: template of default \\({database}\\) in use by a live run$"
    assert len(re.findall(in_use, gc.stdout, re.M)) == 1, gc.stdout
    older = rf"^would drop test_dbscope_tpl_\\w+: an older template of default \\({database}\\), superseded by "
    assert len(re.findall(older, gc.stdout, re.M)) == 1, gc.stdout
"""


class Server:
    """The PostgreSQL or MariaDB server of a sandbox, for the gc test."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.url = PG_URL.geturl() if engine == "postgresql" else MARIADB_URL.geturl()

    def templates_of(self, prefix: str) -> list[str]:
        return _pg_templates_of(prefix) if self.engine == "postgresql" else _mariadb_templates_of(prefix)

    def templates(self) -> list[str]:
        if self.engine == "postgresql":
            return _pg_databases("test_dbscope_tpl_")
        return _mariadb_databases("test\\_dbscope\\_tpl\\_%")

    def create(self, name: str, *, mark: tuple[str, str, str] | None = None) -> None:
        """A database named ``name``, marked as dbscope.django's template of (alias, database, fingerprint)."""
        if self.engine == "postgresql":
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                if mark:
                    comment = f"dbscope.django template of {mark[0]} ({mark[1]}) {mark[2]} made 9999999999"
                    conn.execute(
                        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment))
                    )
            return
        conn = _mariadb()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}`")
                if mark:
                    cursor.execute(
                        f"CREATE TABLE `{name}`.dbscope_django_template (alias VARCHAR(255), "
                        "settings_database VARCHAR(255), fingerprint CHAR(64), made DOUBLE)"
                    )
                    cursor.execute(
                        f"INSERT INTO `{name}`.dbscope_django_template VALUES (%s, %s, %s, 9999999999)", list(mark)
                    )
        finally:
            conn.close()

    def drop(self, name: str) -> None:
        if self.engine == "postgresql":
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            return
        conn = _mariadb()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.mark.parametrize("sandbox", ["postgresql", "mysql"], indirect=True)
def test_dbscope_gc_drops_the_superseded_django_templates_never_one_in_use_or_not_its_own(sandbox: Sandbox) -> None:
    from dbscope.django_templates import template_garbage
    from dbscope.urls import parse_backend_url

    server = Server(sandbox.engine)
    first = sandbox.run("--dbscope-django", "tests/test_catalog.py")
    assert first.returncode == 0, first.stdout[-2000:]
    old = server.templates_of(sandbox.prefix)
    assert len(old) == 1  # test_catalog.py uses the default alias only

    # databases named like dbscope.django's templates that it did not make: never dropped
    strangers = [f"test_dbscope_tpl_{uuid.uuid4().hex}" for _ in range(2)]
    server.create(strangers[0], mark=("default", sandbox.prefix, "0" * 64))  # another fingerprint than its name's
    server.create(strangers[1])
    try:
        sandbox.write("catalog/migrations/0003_noop.py", NEW_MIGRATION)  # a new fingerprint
        sandbox.write("tests/test_gc_inside.py", GC_INSIDE_A_RUN)
        second = sandbox.run("--dbscope-django", "tests/test_catalog.py", "tests/test_gc_inside.py")
        assert second.returncode == 0, second.stdout[-3000:]
        assert _passed(second) == _passed(first) + 1  # the check inside the run ran, and passed
        new = sorted(set(server.templates_of(sandbox.prefix)) - set(old) - {strangers[0]})
        assert len(new) == 1

        url = parse_backend_url(server.url)
        listed = {item.name: item for item in template_garbage(url)}  # a dry run: nothing dropped
        assert {name for name in listed if listed[name].action == "drop"} >= set(old)
        assert all(name in server.templates_of(sandbox.prefix) for name in old)

        done = {item.name: item for item in template_garbage(url, dry_run=False)}
        assert all(done[name].action == "drop" for name in old)
        assert all(done[name].action == "keep" and "the newest template of" in done[name].reason for name in new)
        assert "another fingerprint" in done[strangers[0]].reason and done[strangers[0]].action == "keep"
        assert "not marked as a complete template" in done[strangers[1]].reason and done[strangers[1]].action == "keep"
        left = server.templates()
        assert not set(old) & set(left) and set(new) | set(strangers) <= set(left)
        # the kept templates are still good: the next run reuses them
        third = sandbox.run("--dbscope-django", "tests/test_catalog.py")
        assert third.returncode == 0 and all("template reused" in line for line in _summary(third)), third.stdout
    finally:
        for name in strangers:
            server.drop(name)


@pytest.mark.parametrize("sandbox", ["mysql"], indirect=True)
def test_a_mariadb_template_whose_build_did_not_finish_is_built_again(sandbox: Sandbox) -> None:
    first = sandbox.run("--dbscope-django", "tests/test_catalog.py")
    assert first.returncode == 0 and all("template built" in line for line in _summary(first)), first.stdout
    (template,) = _mariadb_templates_of(sandbox.prefix)
    try:
        conn = _mariadb()
        try:
            with conn.cursor() as cursor:  # as if the build had died before its last step, the mark
                cursor.execute(f"DELETE FROM `{template}`.dbscope_django_template")
                cursor.execute("SET foreign_key_checks = 0")
                cursor.execute(f"DROP TABLE `{template}`.catalog_product")
        finally:
            conn.close()
        second = sandbox.run("--dbscope-django", "tests/test_catalog.py")
        assert second.returncode == 0, second.stdout[-3000:]
        assert all("template built" in line for line in _summary(second)), second.stdout
        assert _mariadb_templates_of(sandbox.prefix) == [template]  # the same fingerprint, complete this time
        third = sandbox.run("--dbscope-django", "tests/test_catalog.py")
        assert third.returncode == 0 and all("template reused" in line for line in _summary(third)), third.stdout
    finally:  # unmarked, the sandbox would not find it to drop
        Server("mysql").drop(template)
