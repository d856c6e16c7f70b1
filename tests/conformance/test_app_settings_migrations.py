"""Migrations that read the app's settings build the template, and a misdirected one is caught.

Many alembic ``env.py`` files ignore ``sqlalchemy.url`` and build the URL from the
application's settings (an environment variable). While dbscope builds a template, every
``dbscope_env_var`` variable holds the template's address, so such an ``env.py`` migrates
the template; when it connects elsewhere anyway, the empty template is caught and the run
stops with a message that says so, instead of handing out an empty database.
"""

from __future__ import annotations

import uuid

import pytest
from test_sqlalchemy_sources import make_alembic

from .conftest import url_of

APP_SETTINGS = """
import os

def database_url():
    return os.environ.get("DATABASE_URL", "sqlite:///never-used.db")
"""

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine, pool

import app_settings  # the app's own settings, not alembic's sqlalchemy.url

engine = create_engine(app_settings.database_url(), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""

TESTS = """
def test_the_template_has_the_table(db):
    db.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    assert db.execute("SELECT count(*) FROM users").scalar() == 1
"""


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return url_of(str(request.param), request, tmp_path_factory.mktemp("dbs"))


def project(pytester: pytest.Pytester, url: str, env_var: str) -> None:
    make_alembic(pytester)
    # a template of this run's own: --dbscope-rebuild drops the template of the migrations'
    # fingerprint, which would pull it from under another run (an xdist worker's) using it
    (pytester.path / "migrations" / "env.py").write_text(f"# {uuid.uuid4().hex}\n{ENV_PY}")
    pytester.makepyfile(app_settings=APP_SETTINGS, test_app=TESTS)
    pytester.makefile(
        ".ini",
        pytest=f"[pytest]\ndbscope_url = {url}\ndbscope_migrations = alembic:alembic.ini\n"
        f"dbscope_env_var = {env_var}\n",
    )


@pytest.mark.parametrize("strategy", ["clone", "reset"])
def test_an_env_py_that_reads_the_apps_settings_builds_the_template(
    pytester: pytest.Pytester, url: str, strategy: str
) -> None:
    project(pytester, url, "DATABASE_URL")
    result = pytester.runpytest_subprocess("--dbscope-rebuild", f"--dbscope-strategy={strategy}", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "never-used.db").exists()


def test_a_migration_that_went_to_another_database_stops_the_run(
    pytester: pytest.Pytester, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = pytester.path / "developer.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere}")  # the shell's, which the app falls back to
    project(pytester, url, "SOME_OTHER_NAME")  # so dbscope does not set the variable the app reads
    result = pytester.runpytest_subprocess("--dbscope-rebuild", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dbscope: MigrationError: migration alembic:alembic.ini ran without error, but the template it "
            "was to build lacks the alembic_version table (no revision was recorded in it): the migration connected "
            "to another database*While the template is built, SOME_OTHER_NAME hold the template's address*"
        ]
    )
    assert elsewhere.exists()  # where the migration really went
