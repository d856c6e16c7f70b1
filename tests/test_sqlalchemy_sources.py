"""Migrations from SQLAlchemy metadata and from alembic; sync and async engines."""

from __future__ import annotations

import sys
import textwrap

import pytest

from dbscope import ConfigError, MigrationError
from dbscope.migrations import load_migrations

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
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(200), unique=True))

def downgrade():
    op.drop_table("users")
'''


def make_alembic(pytester: pytest.Pytester, revision: str = REVISION) -> None:
    result = pytester.run(sys.executable, "-m", "alembic", "init", "migrations")  # the venv's alembic, PATH or not
    assert result.ret == 0, result.stderr.str()
    (pytester.path / "migrations" / "versions" / "0001_users.py").write_text(revision)


def test_sqlalchemy_metadata_gets_create_all(pytester):
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


def test_alembic_upgrades_the_template_to_head(pytester):
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


def test_a_failing_alembic_revision_is_a_migration_error(pytester):
    make_alembic(pytester, REVISION.replace('op.create_table("users"', 'op.execute("CREATE TABLE broken (")\n    op.create_table("users"'))
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = alembic:alembic.ini\n")
    pytester.makepyfile("def test_x(db): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*MigrationError: migration failed in alembic:alembic.ini (alembic upgrade head)*"])


def test_the_alembic_fingerprint_follows_the_revision_files(pytester):
    make_alembic(pytester)
    before = load_migrations("alembic:alembic.ini", base_dir=pytester.path).fingerprint
    assert load_migrations("alembic:alembic.ini", base_dir=pytester.path).fingerprint == before
    (pytester.path / "migrations" / "versions" / "0001_users.py").write_text(REVISION + "\n# changed\n")
    assert load_migrations("alembic:alembic.ini", base_dir=pytester.path).fingerprint != before


def test_a_missing_alembic_ini_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"alembic ini 'nope.ini' does not exist \(resolved to .*nope.ini\)"):
        load_migrations("alembic:nope.ini", base_dir=tmp_path)


def test_a_metadata_step_without_a_url_says_so(tmp_path, monkeypatch):
    (tmp_path / "models_x.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    migrations = load_migrations("models_x:Base.metadata")
    import sqlite3

    with pytest.raises(MigrationError, match="needs a database URL"):
        migrations.apply(sqlite3.connect(":memory:"))


def test_async_engine_on_the_test_database(project):
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
