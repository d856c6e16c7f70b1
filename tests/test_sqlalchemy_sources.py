"""Migrations from SQLAlchemy metadata and from alembic; sync and async engines."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dbscope import ConfigError, MigrationError
from dbscope.migrations import load_migrations

if TYPE_CHECKING:
    from conftest import MakeProject

MODELS = """
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)

class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
"""

REVISION = '''
"""create users"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), unique=True),
    )

def downgrade():
    op.drop_table("users")
'''


def make_alembic(pytester: pytest.Pytester, revision: str = REVISION) -> None:
    """``alembic init migrations`` in the project (run once per session, then copied) and one revision."""
    skeleton = pytester.path.parent / "alembic-init"  # in the session's base temporary directory
    if not (skeleton / "alembic.ini").is_file():
        skeleton.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "alembic", "init", "migrations"]  # the venv's alembic, PATH or not
        result = subprocess.run(command, cwd=skeleton, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    shutil.copytree(skeleton / "migrations", pytester.path / "migrations")
    shutil.copy(skeleton / "alembic.ini", pytester.path / "alembic.ini")
    (pytester.path / "migrations" / "versions" / "0001_users.py").write_text(revision)


def test_sqlalchemy_metadata_gets_create_all(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS)
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = models:Base.metadata\n")
    pytester.makepyfile(
        """
        import sqlalchemy as sa
        from sqlalchemy.orm import Session
        from models import User

        def test_orm_on_the_test_database(db_engine, db):
            with Session(db_engine) as session:
                session.add(User(email="a@example.com"))
                session.commit()
            assert db.execute("SELECT email FROM users").rows == [("a@example.com",)]

        def test_fresh_again(db):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
        """
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=2)


def test_alembic_upgrades_the_template_to_head(pytester: pytest.Pytester) -> None:
    make_alembic(pytester)
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = alembic:alembic.ini\n")
    pytester.makepyfile(
        """
        def test_at_head(db):
            assert db.execute("SELECT version_num FROM alembic_version").scalar() == "0001"
            db.execute("INSERT INTO users (email) VALUES ('a@example.com')")

        def test_clean(db):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_failing_alembic_revision_is_a_migration_error(pytester: pytest.Pytester) -> None:
    broken = 'op.execute("CREATE TABLE broken (")\n    op.create_table('
    make_alembic(pytester, REVISION.replace("op.create_table(", broken))
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = alembic:alembic.ini\n")
    pytester.makepyfile("def test_x(db): pass")
    result = pytester.runpytest()
    assert result.ret != 0
    # an error of the test, or of the session when the template is built at its start
    output = result.stdout.str() + result.stderr.str()
    assert "MigrationError: migration failed in alembic:alembic.ini (alembic upgrade head)" in output


def alembic_fingerprint(pytester: pytest.Pytester) -> str:
    return load_migrations("alembic:alembic.ini", base_dir=pytester.path).fingerprint


def test_the_alembic_fingerprint_follows_the_revision_files(pytester: pytest.Pytester) -> None:
    make_alembic(pytester)
    before = alembic_fingerprint(pytester)
    assert alembic_fingerprint(pytester) == before
    (pytester.path / "migrations" / "versions" / "0001_users.py").write_text(REVISION + "\n# changed\n")
    assert alembic_fingerprint(pytester) != before


def test_the_alembic_fingerprint_covers_the_ini_env_py_and_every_revision_file(pytester: pytest.Pytester) -> None:
    make_alembic(pytester)
    migrations = pytester.path / "migrations"
    seen = {alembic_fingerprint(pytester)}
    for path, addition in [
        (pytester.path / "alembic.ini", "\n# changed\n"),
        (migrations / "env.py", "\n# changed\n"),
        (migrations / "versions" / "0002_data.sql", "INSERT INTO users (email) VALUES ('x');\n"),  # a revision reads it
        (migrations / "versions" / "notes.txt", "anything a revision may read\n"),
    ]:
        with path.open("a") as file:
            file.write(addition)
        seen.add(alembic_fingerprint(pytester))
    assert len(seen) == 5

    # what only shapes new revision files does not rebuild the template
    with (migrations / "script.py.mako").open("a") as file:
        file.write("\n# changed\n")
    (migrations / "README").write_text("changed\n")
    assert alembic_fingerprint(pytester) in seen


def test_the_alembic_fingerprint_covers_version_locations_outside_the_script_location(
    pytester: pytest.Pytester,
) -> None:
    make_alembic(pytester)
    elsewhere = pytester.path / "more_versions"
    elsewhere.mkdir()
    (elsewhere / "0002_more.py").write_text("# a revision\n")
    ini = pytester.path / "alembic.ini"
    assert "\npath_separator = os\n" in ini.read_text()  # what alembic init writes: split on os.pathsep
    locations = f"%(here)s/migrations/versions{os.pathsep}%(here)s/more_versions"
    ini.write_text(ini.read_text().replace("[alembic]\n", f"[alembic]\nversion_locations = {locations}\n", 1))
    before = alembic_fingerprint(pytester)
    (elsewhere / "0002_more.py").write_text("# a revision, changed\n")
    assert alembic_fingerprint(pytester) != before


def test_a_missing_alembic_ini_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"alembic ini 'nope.ini' does not exist \(resolved to .*nope.ini\)"):
        load_migrations("alembic:nope.ini", base_dir=tmp_path)


def test_a_metadata_step_without_a_url_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models_x.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    migrations = load_migrations("models_x:Base.metadata")
    conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(MigrationError, match="needs a database URL"):
            migrations.apply(conn)
    finally:
        conn.close()
        sys.modules.pop("models_x", None)


def test_async_engine_on_the_test_database(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import asyncio
        import sqlalchemy as sa

        def test_async(db, db_async_engine):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")

            async def count():
                async with db_async_engine.connect() as conn:
                    return (await conn.execute(sa.text("SELECT COUNT(*) FROM users"))).scalar()

            assert asyncio.run(count()) == 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*leaked: 0"])
