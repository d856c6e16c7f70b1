"""Every migration source form builds its template on every backend; cached templates follow the code.

Each case is a real pytest run (in a subprocess: the plugin sets environment variables at
startup) of a tiny project whose tests insert into and read a migrated table through
``db``. The backends: ``sqlite://``, ``sqlite:///<dir>``, the test PostgreSQL server
(``pg_url``) and ``postgresql+proc://``; the forms: a directory of ``.sql`` files, one
``.sql`` file, ``module:callable``, ``module:Base.metadata`` and ``alembic:alembic.ini``.

Then staleness: ``sqlite:///<dir>`` and a PostgreSQL server keep templates across runs,
keyed by the fingerprint. A second run, after a column was added in a module other than
the one the setting names, must see the column without ``--dbscope-rebuild``.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable

import pytest
from test_sqlalchemy_sources import MODELS, make_alembic

USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE);\n"

CALLABLE = f'''
def migrate(conn):
    cursor = conn.cursor()
    cursor.execute("""{USERS_SQL.strip().rstrip(";")}""")
    cursor.close()
'''

# every form makes users (id, email); the second test proves each test gets a fresh copy
USERS_TEST = """
def test_insert_and_read(db):
    db.execute("INSERT INTO users (id, email) VALUES (?, ?)", [1, "a@example.com"])
    assert db.execute("SELECT id, email FROM users").rows == [(1, "a@example.com")]

def test_fresh_copy(db):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


def write_sql_dir(pytester: pytest.Pytester) -> str:
    pytester.mkdir("migrations")
    (pytester.path / "migrations" / "0001_users.sql").write_text(USERS_SQL)
    (pytester.path / "migrations" / "0002_index.sql").write_text("CREATE INDEX users_by_email ON users (email);\n")
    return "migrations"


def write_sql_file(pytester: pytest.Pytester) -> str:
    (pytester.path / "schema.sql").write_text(USERS_SQL)
    return "schema.sql"


def write_callable(pytester: pytest.Pytester) -> str:
    pytester.makepyfile(schema_steps=CALLABLE)
    return "schema_steps:migrate"


def write_metadata(pytester: pytest.Pytester) -> str:
    pytester.makepyfile(models=MODELS)
    return "models:Base.metadata"


def write_alembic(pytester: pytest.Pytester) -> str:
    make_alembic(pytester)
    return "alembic:alembic.ini"


FORMS: dict[str, Callable[[pytest.Pytester], str]] = {
    "sql-dir": write_sql_dir,
    "sql-file": write_sql_file,
    "callable": write_callable,
    "metadata": write_metadata,
    "alembic": write_alembic,
}


def run(pytester: pytest.Pytester, url: str, spec: str) -> pytest.RunResult:
    pytester.makefile(".ini", pytest=f"[pytest]\ndbscope_url = {url}\ndbscope_migrations = {spec}\n")
    # without the plugins these projects do not use, each run starts in half a second instead of more than one
    quiet = ["-p", "no:benchmark", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:xdist"]
    return pytester.runpytest_subprocess(*quiet)


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_builds_on_every_backend(pytester: pytest.Pytester, backend_url: str, form: str) -> None:
    spec = FORMS[form](pytester)
    pytester.makepyfile(test_users=USERS_TEST)

    result = run(pytester, backend_url, spec)

    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)


# -- cached templates follow the code ---------------------------------------------------------

MODELS_BASE = """
from sqlalchemy.orm import DeclarativeBase

class Base(DeclarativeBase):
    pass

from . import items  # noqa: E402  the models live in another module
"""

MODELS_ITEMS = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from . import Base

class Item(Base):
    __tablename__ = "items_{tag}"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
"""

STEPS = """
from schema_columns import COLUMNS

def migrate(conn):
    cursor = conn.cursor()
    cursor.execute(f"CREATE TABLE items_{tag} (id INTEGER PRIMARY KEY, {{COLUMNS}})")
    cursor.close()
"""

ITEMS_TEST = """
def test_items(db):
    db.execute("INSERT INTO items_{tag} ({columns}) VALUES ({values})")
    assert db.execute("SELECT COUNT(*) FROM items_{tag}").scalar() == 1
"""


def write_split_models(pytester: pytest.Pytester, tag: str, *, added: bool) -> str:
    (pytester.path / "shopmodels").mkdir(exist_ok=True)
    (pytester.path / "shopmodels" / "__init__.py").write_text(MODELS_BASE)
    items = MODELS_ITEMS.format(tag=tag)
    if added:
        items += "    note: Mapped[str] = mapped_column(String(50), default='')\n"
    (pytester.path / "shopmodels" / "items.py").write_text(items)
    return "shopmodels:Base.metadata"


def write_callable_with_helper(pytester: pytest.Pytester, tag: str, *, added: bool) -> str:
    pytester.makepyfile(schema_steps=STEPS.format(tag=tag))
    columns = "name VARCHAR(50), note VARCHAR(50)" if added else "name VARCHAR(50)"
    pytester.makepyfile(schema_columns=f"COLUMNS = {columns!r}\n")
    return "schema_steps:migrate"


CHANGING: dict[str, Callable[..., str]] = {"metadata": write_split_models, "callable": write_callable_with_helper}


@pytest.fixture(params=["sqlite-dir", "postgresql"])
def caching_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A backend that keeps templates across runs."""
    if request.param == "sqlite-dir":
        return f"sqlite:///{tmp_path_factory.mktemp('templates')}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("form", list(CHANGING))
def test_a_change_in_another_module_rebuilds_the_cached_template(
    pytester: pytest.Pytester, caching_url: str, form: str
) -> None:
    tag = uuid.uuid4().hex[:8]  # a schema (and fingerprint) of this test's own
    spec = CHANGING[form](pytester, tag, added=False)
    pytester.makepyfile(test_items=ITEMS_TEST.format(tag=tag, columns="id, name", values="1, 'a'"))
    first = run(pytester, caching_url, spec)
    assert first.ret == 0, first.stdout.str() + first.stderr.str()

    CHANGING[form](pytester, tag, added=True)  # only the other module changes
    pytester.makepyfile(test_items=ITEMS_TEST.format(tag=tag, columns="id, name, note", values="1, 'a', 'n'"))
    second = run(pytester, caching_url, spec)

    assert second.ret == 0, "the cached template went stale:\n" + textwrap.indent(second.stdout.str(), "    ")
    second.assert_outcomes(passed=1)
