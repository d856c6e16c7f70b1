"""``dbscope init``: real projects on disk, the installed ``dbscope`` command, then ``dbscope doctor``.

Each test builds a small project in a temporary directory, runs the console script in it
(as a user would: the current directory is not on sys.path), and reads back the file it
wrote; most then run ``dbscope doctor`` there, and some run the project's own tests.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dbscope.init import scan_env_reads

BIN = Path(sys.executable).parent
USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
MODELS = """
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without dbscope's settings or pytest's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBSCOPE_", "PYTEST_", "PYTHONPATH"))}
    env.pop("DATABASE_URL", None)
    return {**env, "NO_COLOR": "1", **extra}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def dbscope(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``dbscope`` console script, with stdin that is not a terminal."""
    return subprocess.run(
        [str(BIN / "dbscope"), *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def init(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = dbscope(cwd, "init", *args, **env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def assert_doctor_ok(cwd: Path, **env: str) -> None:
    done = dbscope(cwd, "doctor", "--clones", "2", **env)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "no problems found", done.stdout + done.stderr


def run_pytest(cwd: Path) -> subprocess.CompletedProcess[str]:
    """The project's own tests, with the ``pytest`` command (which does not put the current directory on sys.path)."""
    return subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- what it finds, what it writes, and doctor afterwards ---------------------------------


def test_sql_migrations_and_a_seed_file_go_into_pytest_ini_and_nothing_else_moves(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pytest.ini": """
                [pytest]
                # the team's settings
                testpaths = tests
                addopts =
                    -ra
                    --strict-markers

                [flake8]
                max-line-length = 100
            """,
            "migrations/0001_users.sql": USERS_SQL,
            "tests/seed.sql": "INSERT INTO users (name) VALUES ('Ana');\n",
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pytest.ini").read_text() == textwrap.dedent(
        """\
        [pytest]
        # the team's settings
        testpaths = tests
        addopts =
            -ra
            --strict-markers
        dbscope_migrations = migrations
        dbscope_seed = tests/seed.sql

        [flake8]
        max-line-length = 100
        """
    )
    lines = done.stdout.splitlines()
    assert "  found    migrations: migrations/, 1 .sql file(s) -> dbscope_migrations = migrations" in lines
    assert "  found    seed data: tests/seed.sql -> dbscope_seed = tests/seed.sql" in lines
    assert "+dbscope_migrations = migrations" in lines and "+dbscope_seed = tests/seed.sql" in lines
    assert lines[-3:] == [
        "wrote 2 setting(s) to pytest.ini",
        "next: dbscope doctor    (checks the settings and builds the template once)",
        "then: pytest",
    ]
    assert_doctor_ok(tmp_path)


@pytest.mark.parametrize("directory", ["db/migrations", "sql"])
def test_the_other_migration_directories_are_found_too(tmp_path: Path, directory: str) -> None:
    write(tmp_path, {f"{directory}/0001_users.sql": USERS_SQL})
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pytest.ini").read_text() == f"[pytest]\ndbscope_migrations = {directory}\n"
    assert_doctor_ok(tmp_path)


def test_alembic_ini_becomes_an_alembic_source(tmp_path: Path) -> None:
    made = subprocess.run(
        [str(BIN / "alembic"), "init", "alembic"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    write(
        tmp_path,
        {
            "alembic/versions/0001_users.py": """
                import sqlalchemy as sa
                from alembic import op

                revision = "0001"
                down_revision = None


                def upgrade() -> None:
                    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))
            """,
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert "  found    migrations: alembic.ini -> dbscope_migrations = alembic:alembic.ini" in done.stdout
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\ndbscope_migrations = alembic:alembic.ini\n"
    assert_doctor_ok(tmp_path)


def test_a_metadata_in_a_package_that_is_not_installed_gets_pythonpath_and_pytest_imports_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/models.py": MODELS,
            "tests/test_users.py": """
                def test_the_schema_is_there(db):
                    db.execute("INSERT INTO users (name) VALUES ('Ana')")
                    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1
            """,
        },
    )
    done = init(tmp_path, "--metadata", "app.models:Base", "--yes")  # a declarative base: its .metadata
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pytest.ini").read_text() == (
        "[pytest]\npythonpath = .\ndbscope_migrations = app.models:Base.metadata\n"
    )
    assert "  note     app.models:Base is a declarative base: its metadata is app.models:Base.metadata" in done.stdout
    assert "next: dbscope doctor    (checks the settings and builds the template once)" in done.stdout
    assert_doctor_ok(tmp_path)  # doctor reads pythonpath = . as pytest does
    tests = run_pytest(tmp_path)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr


def test_an_installed_metadata_needs_no_pythonpath(tmp_path: Path) -> None:
    installed = write(tmp_path / "site", {"shopmodels/__init__.py": MODELS})
    project = tmp_path / "project"
    project.mkdir()
    done = init(project, "--metadata", "shopmodels:Base.metadata", "--yes", PYTHONPATH=str(installed))
    assert done.returncode == 0, done.stderr
    assert (project / "pytest.ini").read_text() == "[pytest]\ndbscope_migrations = shopmodels:Base.metadata\n"
    assert "next: dbscope doctor " in done.stdout
    assert_doctor_ok(project, PYTHONPATH=str(installed))


def test_doctor_reads_pytests_pythonpath(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/models.py": MODELS})
    assert init(tmp_path, "--metadata", "app.models:Base.metadata", "--yes").returncode == 0
    assert_doctor_ok(tmp_path)


APP_DB = """
    import os

    from sqlalchemy import create_engine

    engine = create_engine(os.environ["DATABASE_URL"])
"""


def test_a_url_read_at_import_time_gives_its_variable_and_the_reset_strategy(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "shop"\n',
            "migrations/0001_users.sql": USERS_SQL,
            "shop/__init__.py": "",
            "shop/db.py": APP_DB,
            "tests/conftest.py": "import shop.db  # noqa: F401  (the engine is made when the tests are collected)\n",
            "tests/test_signup.py": """
                import pytest
                from sqlalchemy import text

                from shop.db import engine


                @pytest.mark.parametrize("name", ["Ana", "Bo"])
                def test_each_test_starts_empty(name):
                    with engine.begin() as conn:
                        conn.execute(text("INSERT INTO users (name) VALUES (:name)"), {"name": name})
                        assert conn.execute(text("SELECT COUNT(*) FROM users")).scalar() == 1
            """,
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "  found    database URL: DATABASE_URL, read at import time (shop/db.py:5) -> dbscope_env_var = DATABASE_URL"
        in lines
    )
    assert any(
        line.startswith("  found    strategy: DATABASE_URL is read at import time (shop/db.py:5)") for line in lines
    )
    assert lines[1] == (
        "  config   pyproject.toml: pytest's config file here, with no pytest settings yet: "
        "a new [tool.pytest.ini_options]"
    )
    assert (tmp_path / "pyproject.toml").read_text() == textwrap.dedent(
        """\
        [project]
        name = "shop"

        [tool.pytest.ini_options]
        dbscope_migrations = "migrations"
        dbscope_env_var = ["DATABASE_URL"]
        dbscope_strategy = "reset"
        """
    )
    assert_doctor_ok(tmp_path)
    # python -m pytest puts the project on sys.path; the engine made at import reaches each test's own database
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout + tests.stderr


def test_a_url_read_inside_a_function_keeps_the_default_strategy_and_its_async_form(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/db.py": """
                from os import getenv as env

                from sqlalchemy.ext.asyncio import create_async_engine


                def engine():
                    return create_async_engine(env("APP_DATABASE_URI", "sqlite+aiosqlite://"))
            """,
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert "strategy" not in done.stdout
    assert (
        "  found    database URL: APP_DATABASE_URI, read inside a function (app/db.py:7) "
        "-> dbscope_env_var = APP_DATABASE_URI:async"
    ) in done.stdout
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\ndbscope_env_var = APP_DATABASE_URI:async\n"
    assert_doctor_ok(tmp_path)


def test_a_pydantic_settings_field_is_read_with_its_prefix(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/config.py": """
                from pydantic_settings import BaseSettings, SettingsConfigDict


                class Settings(BaseSettings):
                    model_config = SettingsConfigDict(env_prefix="SHOP_")
                    database_url: str = "sqlite:///shop.db"
                    debug: bool = False


                settings = Settings()
            """,
        },
    )
    done = init(tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert (
        "  found    database URL: SHOP_DATABASE_URL, read by the pydantic settings class Settings, made at import "
        "time in app/config.py:10 (app/config.py:6) -> dbscope_env_var = SHOP_DATABASE_URL"
    ) in done.stdout
    assert "+dbscope_strategy = reset" in done.stdout
    assert not (tmp_path / "pytest.ini").exists()


def test_several_url_variables_are_listed_and_one_is_picked_with_env_var(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "app/db.py": """
                import os

                from sqlalchemy import create_engine
                from sqlalchemy.ext.asyncio import create_async_engine

                engine = create_engine(os.environ.get("TEST_DATABASE_URI", "sqlite:///test.db"))
                async_engine = create_async_engine(os.environ.get("TEST_ASYNC_DATABASE_URI", "sqlite+aiosqlite://"))
                cache = os.getenv("REDIS_URL")
            """,
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "dbscope init: error: the project reads more than one variable named like a database URL: "
        "TEST_ASYNC_DATABASE_URI, read at import time (app/db.py:7); TEST_DATABASE_URI, read at import time "
        "(app/db.py:6). Pass the ones the app reads its database's address from (all of them: "
        "--env-var TEST_ASYNC_DATABASE_URI:async --env-var TEST_DATABASE_URI); nothing was written"
    )
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\n"

    done = init(tmp_path, "--yes", "--env-var", "TEST_DATABASE_URI", "--env-var", "TEST_ASYNC_DATABASE_URI:async")
    assert done.returncode == 0, done.stderr
    assert "  note     also read, not taken for a database URL: REDIS_URL, read at import time (app/db.py:8)" in (
        done.stdout
    )
    assert (tmp_path / "pytest.ini").read_text() == textwrap.dedent(
        """\
        [pytest]
        dbscope_env_var =
            TEST_DATABASE_URI
            TEST_ASYNC_DATABASE_URI:async
        dbscope_strategy = reset
        """
    )
    assert_doctor_ok(tmp_path)


def test_the_scan_reads_literal_names_only_where_they_are_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/settings.py": """
                import os as system
                from os import environ as env

                URL = env["PRIMARY_DB_URL"]
                system.environ["WRITTEN_DB_URL"] = "sqlite://"
                name = "DYNAMIC_DB_URL"
                dynamic = system.environ.get(name)

                if __name__ == "__main__":
                    print(system.getenv("SCRIPT_DB_URL"))
            """,
            "alembic/env.py": "import os\n\nURL = os.environ['MIGRATION_DB_URL']\n",
            "alembic/versions/.keep": "",
            "venv/pyvenv.cfg": "home = /usr/bin\n",
            "venv/lib/site.py": "import os\nos.environ['VENV_DB_URL']\n",
            ".hidden/x.py": "import os\nos.environ['HIDDEN_DB_URL']\n",
            "node_modules/x.py": "import os\nos.environ['NODE_DB_URL']\n",
            "broken.py": "def (:\n",
        },
    )
    reads, notes = scan_env_reads(tmp_path)
    assert [(r.name, r.where, r.at_import) for r in reads] == [
        ("MIGRATION_DB_URL", "alembic/env.py:3", False),
        ("PRIMARY_DB_URL", "app/settings.py:4", True),
        ("SCRIPT_DB_URL", "app/settings.py:10", False),
    ]
    assert reads[0].how == "by alembic's env.py, while migrating"
    assert notes == ["could not parse 1 .py file(s): broken.py"]


# -- which file, and how it is edited -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "section"),
    [("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]")],
)
def test_tox_ini_and_setup_cfg_get_the_settings_in_pytests_section_with_their_line_endings(
    tmp_path: Path, name: str, section: str
) -> None:
    original = f"[metadata]\r\nname = shop\r\n\r\n{section}\r\naddopts = -ra\r\n\r\n[other]\r\nx = 1\r\n"
    (tmp_path / name).write_bytes(original.encode())
    write(tmp_path, {"migrations/0001_users.sql": USERS_SQL})
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"  config   {name} {section}: the file pytest reads here" in done.stdout
    assert (tmp_path / name).read_bytes().decode() == original.replace(
        "addopts = -ra\r\n", "addopts = -ra\r\ndbscope_migrations = migrations\r\n"
    )
    assert_doctor_ok(tmp_path)


def test_pytest_9s_native_toml_table_gets_toml_types(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.pytest]\naddopts = ["-ra"]\n',
            "migrations/0001_users.sql": USERS_SQL,
        },
    )
    done = init(tmp_path, "--yes", "--env-var", "APP_DB_URL, APP_ASYNC_DB_URL:async")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pyproject.toml").read_text() == (
        '[tool.pytest]\naddopts = ["-ra"]\ndbscope_migrations = "migrations"\n'
        'dbscope_env_var = ["APP_DB_URL", "APP_ASYNC_DB_URL:async"]\n'
    )
    assert_doctor_ok(tmp_path)


def test_a_value_in_the_file_is_kept_and_a_given_one_replaces_it_in_place(tmp_path: Path) -> None:
    pyproject = """
        [tool.pytest.ini_options]
        addopts = [
            "-ra",
            "[not a table]",
        ]
        dbscope_migrations = "schema"   # ours
        dbscope_env_var = [
            "OLD_DB_URL",
        ]

        [tool.ruff]
        line-length = 100
    """
    write(tmp_path, {"pyproject.toml": pyproject, "schema/0001_users.sql": USERS_SQL, "sql/0001_users.sql": USERS_SQL})
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert (
        "  kept     migrations: dbscope_migrations = schema in pyproject.toml stays; found sql/, 1 .sql file(s) "
        "(to replace it: --migrations sql)"
    ) in done.stdout
    assert "nothing to change in pyproject.toml" in done.stdout
    assert (tmp_path / "pyproject.toml").read_text() == textwrap.dedent(pyproject).lstrip("\n")

    done = init(tmp_path, "--yes", "--migrations", "sql", "--env-var", "NEW_DB_URL")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pyproject.toml").read_text() == textwrap.dedent(
        """\
        [tool.pytest.ini_options]
        addopts = [
            "-ra",
            "[not a table]",
        ]
        dbscope_migrations = "sql"  # ours
        dbscope_env_var = ["NEW_DB_URL"]

        [tool.ruff]
        line-length = 100
        """
    )
    assert_doctor_ok(tmp_path)


def test_a_multi_line_ini_value_is_replaced_whole(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pytest.ini": """
                [pytest]
                dbscope_env_var =
                    OLD_DB_URL
                    OLD_ASYNC_DB_URL:async
                ; a comment after the setting
                markers = slow
            """,
        },
    )
    done = init(tmp_path, "--yes", "--env-var", "NEW_DB_URL")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pytest.ini").read_text() == (
        "[pytest]\ndbscope_env_var = NEW_DB_URL\n; a comment after the setting\nmarkers = slow\n"
    )


def test_run_again_it_has_nothing_to_change(tmp_path: Path) -> None:
    write(tmp_path, {"migrations/0001_users.sql": USERS_SQL, "app.py": APP_DB})
    assert init(tmp_path, "--yes").returncode == 0
    written = (tmp_path / "pytest.ini").read_text()
    done = init(tmp_path)  # no terminal and no --yes: fine, as there is nothing to ask
    assert done.returncode == 0, done.stderr
    assert "  same     migrations: dbscope_migrations = migrations is already in pytest.ini" in done.stdout
    assert "  same     database URL: dbscope_env_var = DATABASE_URL is already in pytest.ini" in done.stdout
    assert "nothing to change in pytest.ini" in done.stdout and "---" not in done.stdout
    assert (tmp_path / "pytest.ini").read_text() == written


def test_from_a_subdirectory_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"pytest.ini": "[pytest]\n", "migrations/0001_users.sql": USERS_SQL, "tests/data/rows.sql": "SELECT 1;\n"},
    )
    done = init(tmp_path / "tests", "--yes", "--seed", "data/rows.sql")
    assert done.returncode == 0, done.stderr
    assert "  config   ../pytest.ini [pytest]: the file pytest reads here" in done.stdout
    assert (tmp_path / "pytest.ini").read_text() == (
        "[pytest]\ndbscope_migrations = migrations\ndbscope_seed = tests/data/rows.sql\n"
    )
    assert_doctor_ok(tmp_path / "tests")


def test_a_strategy_with_one_url_per_worker_in_the_file_is_left_as_it_is(tmp_path: Path) -> None:
    write(tmp_path, {"pytest.ini": "[pytest]\ndbscope_strategy = rollback\n", "app.py": APP_DB})
    done = init(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert (
        "  same     strategy: dbscope_strategy = rollback in pytest.ini gives each worker one database with a fixed "
        "URL, as DATABASE_URL read at import time (app.py:5) needs"
    ) in done.stdout
    assert (tmp_path / "pytest.ini").read_text() == (
        "[pytest]\ndbscope_strategy = rollback\ndbscope_env_var = DATABASE_URL\n"
    )


def test_a_password_in_a_given_url_is_masked_in_what_is_shown(tmp_path: Path) -> None:
    write(tmp_path, {"pytest.ini": "[pytest]\n"})
    done = init(tmp_path, "--dry-run", "--url", "postgresql://ana:s3cret@localhost:5432/shop")
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout
    assert "+dbscope_url = postgresql://ana:***@localhost:5432/shop" in done.stdout


# -- asking before writing ----------------------------------------------------------------


def project_to_write(tmp_path: Path) -> Path:
    return write(tmp_path, {"pytest.ini": "[pytest]\naddopts = -ra\n", "migrations/0001_users.sql": USERS_SQL})


def test_without_a_terminal_it_shows_the_diff_and_asks_for_yes(tmp_path: Path) -> None:
    project_to_write(tmp_path)
    done = init(tmp_path)
    assert done.returncode == 1
    diff = done.stdout.split("\n\n")[1].splitlines()
    assert diff == [
        "--- pytest.ini",
        "+++ pytest.ini",
        "@@ -1,2 +1,3 @@",
        " [pytest]",
        " addopts = -ra",
        "+dbscope_migrations = migrations",
    ]
    assert done.stderr == (
        "dbscope init: nothing was written: there is no terminal to ask on; run again with --yes to write these "
        "settings to pytest.ini\n"
    )
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\naddopts = -ra\n"


def test_dry_run_shows_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    project_to_write(tmp_path)
    done = init(tmp_path, "--dry-run")
    assert done.returncode == 0 and "+dbscope_migrations = migrations" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "nothing was written (--dry-run); run again with --yes to write these settings to pytest.ini"
    )
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\naddopts = -ra\n"


def on_a_terminal(cwd: Path, answer: str) -> subprocess.CompletedProcess[str]:
    """``dbscope init`` with a pseudo-terminal for stdin, answering the question with ``answer``."""
    parent, child = pty.openpty()
    try:
        with subprocess.Popen(
            [str(BIN / "dbscope"), "init"],
            cwd=cwd,
            env=clean_env(),
            stdin=child,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            os.close(child)
            os.write(parent, answer.encode())
            out, err = process.communicate(timeout=120)
    finally:
        os.close(parent)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize(("answer", "written"), [("y\n", True), ("YES\n", True), ("\n", False), ("n\n", False)])
def test_on_a_terminal_it_asks_and_writes_only_on_yes(tmp_path: Path, answer: str, written: bool) -> None:
    project_to_write(tmp_path)
    done = on_a_terminal(tmp_path, answer)
    assert "Write these settings to pytest.ini? [y/N] " in done.stdout
    if written:
        assert done.returncode == 0, done.stderr
        assert (
            done.stdout.splitlines()[-3] == "Write these settings to pytest.ini? [y/N] wrote 1 setting(s) to pytest.ini"
        )
        assert (tmp_path / "pytest.ini").read_text() == "[pytest]\naddopts = -ra\ndbscope_migrations = migrations\n"
    else:
        assert done.returncode == 1
        assert done.stdout.splitlines()[-1] == "Write these settings to pytest.ini? [y/N] nothing was written"
        assert (tmp_path / "pytest.ini").read_text() == "[pytest]\naddopts = -ra\n"


def test_a_file_changed_while_it_asks_is_not_overwritten(tmp_path: Path) -> None:
    project_to_write(tmp_path)
    parent, child = pty.openpty()
    try:
        with subprocess.Popen(
            [str(BIN / "dbscope"), "init"],
            cwd=tmp_path,
            env=clean_env(),
            stdin=child,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            os.close(child)
            assert process.stdout is not None and process.stderr is not None
            shown = b""
            while not shown.endswith(b"[y/N] "):
                byte = process.stdout.read(1)
                assert byte, shown.decode()
                shown += byte
            (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -q\n")  # someone else's edit, meanwhile
            os.write(parent, b"y\n")
            assert process.wait(timeout=120) == 2
            err = process.stderr.read().decode()
    finally:
        os.close(parent)
    assert (
        err
        == "dbscope init: error: pytest.ini changed while dbscope init was running; run it again; nothing was written\n"
    )
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\naddopts = -q\n"


# -- bad input: a clear error, and nothing written ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--metadata", "app.modelz:Base.metadata"],
            "--metadata 'app.modelz:Base.metadata': cannot import 'app.modelz' (ModuleNotFoundError: No module "
            "named 'app.modelz'); check the name, and that the module imports without the app's services running; "
            "nothing was written",
        ),
        (
            ["--metadata", "app.models:Base.query"],
            "--metadata 'app.models:Base.query': 'app.models' has no attribute 'Base.query' (no 'query'); give the "
            "MetaData, e.g. app.models:Base.metadata; nothing was written",
        ),
        (
            ["--metadata", "app.models:User.name"],
            "--metadata 'app.models:User.name' is of type InstrumentedAttribute, not a SQLAlchemy MetaData; give the "
            "MetaData (e.g. app.models:Base.metadata), or a function that migrates a connection with --migrations; "
            "nothing was written",
        ),
        (
            ["--metadata", "app/models.py"],
            "--metadata 'app/models.py' is not module:attribute; give the MetaData the tables are declared on, "
            "e.g. --metadata app.models:Base.metadata; nothing was written",
        ),
        (
            ["--migrations", "schema"],
            "--migrations: 'schema' does not exist (resolved to {root}/schema, relative to {root}); point it at a "
            "directory of .sql files, one .sql file, package.module:callable, package.module:Base.metadata, or "
            "alembic:path/to/alembic.ini; nothing was written",
        ),
        (
            ["--env-var", "DBSCOPE_URL"],
            "dbscope_env_var = 'DBSCOPE_URL' (from --env-var DBSCOPE_URL on the command line) is not valid: "
            "DBSCOPE_URL is a variable dbscope reads its own settings from; it cannot be changed this way; "
            "nothing was written",
        ),
        (
            ["--env-var", "DB_HOST:host"],
            "dbscope_env_var = 'DB_HOST:host' (from --env-var DB_HOST:host on the command line) is not valid: "
            "DB_HOST:host cannot be set, as dbscope_url 'sqlite://' (the default) is SQLite in memory, whose "
            "databases have no host; use DB_HOST:sqlalchemy or DB_HOST:dsn; nothing was written",
        ),
    ],
)
def test_a_bad_option_is_named_with_what_to_do(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path, {"pytest.ini": "[pytest]\n", "app/__init__.py": "", "app/models.py": MODELS})
    done = init(tmp_path, "--yes", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"dbscope init: error: {message.format(root=tmp_path)}\n"
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "pyproject.toml",
            "[tool.pytest.ini_options\naddopts = '-ra'\n",
            "cannot read {path}: Expected ']' at the end of a table declaration (at line 1, column 25); "
            "pytest cannot read it either: fix it and run dbscope init again",
        ),
        (
            "pytest.ini",
            "[pytest]\naddopts = -ra\naddopts = -q\n",
            "cannot read {path}: While reading from * [line  3]: option 'addopts' in section 'pytest' already "
            "exists; pytest cannot read it either: fix it and run dbscope init again",
        ),
        (
            "pyproject.toml",
            '[tool.pytest]\nini_options = { addopts = "-ra" }\n',
            "cannot add the settings to {path} line by line: its [tool.pytest.ini_options] table is not written as "
            "a [tool.pytest.ini_options] header; nothing was written. Add these lines to its "
            '[tool.pytest.ini_options] yourself:\ndbscope_migrations = "migrations"',
        ),
    ],
)
def test_a_config_file_it_cannot_read_or_edit_is_named_and_left_alone(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path, {name: text, "migrations/0001_users.sql": USERS_SQL})
    done = init(tmp_path, "--yes")
    assert done.returncode == 2 and done.stdout == ""
    head, star, tail = f"dbscope init: error: {message.format(path=tmp_path / name)}\n".partition(" * ")
    if star:  # how configparser names the file is its own business
        assert done.stderr.startswith(head) and done.stderr.endswith(tail), done.stderr
    else:
        assert done.stderr == head
    assert (tmp_path / name).read_text() == text


def test_two_migration_sources_are_named_and_one_must_be_picked(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "alembic.ini": "[alembic]\nscript_location = alembic\n",
            "migrations/0001_users.sql": USERS_SQL,
            "sql/0001_users.sql": USERS_SQL,
        },
    )
    done = init(tmp_path, "--yes")
    assert done.returncode == 2 and not (tmp_path / "pytest.ini").exists()
    assert done.stderr == (
        "dbscope init: error: found more than one migration source: alembic.ini (--migrations alembic:alembic.ini); "
        "migrations/, 1 .sql file(s) (--migrations migrations); sql/, 1 .sql file(s) (--migrations sql); "
        "pass the one the tests should build with --migrations SPEC; nothing was written\n"
    )
    done = init(tmp_path, "--yes", "--migrations", "sql")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\ndbscope_migrations = sql\n"


def test_an_empty_migration_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    write(tmp_path, {"migrations/0001_users.sql": "-- to do\n"})
    done = init(tmp_path, "--yes")
    assert done.returncode == 2 and not (tmp_path / "pytest.ini").exists()
    assert done.stderr == (
        "dbscope init: error: migration migrations/0001_users.sql contains no SQL statements; delete it or add "
        "statements; nothing was written\n"
    )
