"""Loading, splitting, fingerprinting and applying migration sources."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbscope import sqlscan
from dbscope.backends.pg_dialect import translate
from dbscope.errors import ConfigError, MigrationError
from dbscope.migrations import (
    FORMAT_VERSION,
    CallableStep,
    MetadataStep,
    MigrationSet,
    SqlFileStep,
    Statement,
    combined_fingerprint,
    load_migrations,
    split_statements,
)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    yield connection
    connection.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]


# --- loading sources -------------------------------------------------------------


def test_empty_spec_gives_an_empty_set(conn: sqlite3.Connection) -> None:
    for spec in (None, ""):
        migrations = load_migrations(spec)
        assert migrations.steps == ()
        assert migrations.spec == spec
        migrations.apply(conn)
    assert load_migrations(None).fingerprint == load_migrations("").fingerprint


def test_a_directory_is_applied_in_file_name_order(tmp_path: Path, conn: sqlite3.Connection) -> None:
    write(tmp_path / "migrations/0002_orders.sql", "CREATE TABLE orders (user_id INT REFERENCES users);")
    write(tmp_path / "migrations/0001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);")
    write(tmp_path / "migrations/0010_items.sql", "INSERT INTO orders VALUES (1)")
    write(tmp_path / "migrations/README.md", "not SQL;")
    write(tmp_path / "migrations/nested/0000_ignored.sql", "this is not read;")

    migrations = load_migrations("migrations", base_dir=tmp_path)

    assert migrations.spec == "migrations"
    assert [s.name for s in migrations.steps] == [
        "migrations/0001_users.sql",
        "migrations/0002_orders.sql",
        "migrations/0010_items.sql",
    ]
    migrations.apply(conn)
    assert tables(conn) == ["orders", "users"]
    assert conn.execute("SELECT user_id FROM orders").fetchall() == [(1,)]


def test_relative_paths_resolve_against_the_current_directory_without_base_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "schema.sql", "CREATE TABLE t (x);")
    monkeypatch.chdir(tmp_path)
    assert [s.name for s in load_migrations("schema.sql").steps] == ["schema.sql"]


def test_a_single_file_and_an_absolute_path(tmp_path: Path, conn: sqlite3.Connection) -> None:
    schema = write(tmp_path / "db/schema.sql", "CREATE TABLE a (x); CREATE TABLE b (y);")

    relative = load_migrations("db/schema.sql", base_dir=tmp_path)
    absolute = load_migrations(schema, base_dir=tmp_path)
    outside = load_migrations(schema, base_dir=tmp_path / "elsewhere")

    assert [s.name for s in relative.steps] == ["db/schema.sql"]
    assert absolute.steps == relative.steps
    assert [s.name for s in outside.steps] == [schema.as_posix()]
    relative.apply(conn)
    assert tables(conn) == ["a", "b"]


def test_apply_commits(tmp_path: Path) -> None:
    write(tmp_path / "m.sql", "CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    db = tmp_path / "db.sqlite"
    with sqlite3.connect(db) as first:
        load_migrations("m.sql", base_dir=tmp_path).apply(first)
        with sqlite3.connect(db) as second:
            assert second.execute("SELECT x FROM t").fetchall() == [(1,)]
        second.close()
    first.close()


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A module `shop_schema` on sys.path with a function and a method that migrate."""
    write(
        tmp_path / "pkg/shop_schema.py",
        """
        def migrate(conn):
            conn.execute("CREATE TABLE products (name TEXT)")

        class Schema:
            @staticmethod
            def create(conn):
                conn.execute("CREATE TABLE carts (id INT)")

        def broken(conn):
            raise ValueError("no products today")

        def interrupted(conn):
            raise KeyboardInterrupt

        NOT_CALLABLE = 42
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    yield tmp_path
    sys.modules.pop("shop_schema", None)  # the next test writes its own copy


def test_a_callable_spec_is_imported_and_called_with_the_connection(module_dir: Path, conn: sqlite3.Connection) -> None:
    migrations = load_migrations("shop_schema:migrate", base_dir=module_dir)

    (step,) = migrations.steps
    assert isinstance(step, CallableStep)
    assert step.name == "shop_schema:migrate"
    assert step.digest().startswith(b"shop_schema:migrate\0")
    assert b"no products today" in step.digest()  # the module's source keys it
    migrations.apply(conn)
    assert tables(conn) == ["products"]


def test_a_callable_spec_may_name_a_dotted_attribute(module_dir: Path, conn: sqlite3.Connection) -> None:
    load_migrations("shop_schema:Schema.create").apply(conn)
    assert tables(conn) == ["carts"]


def test_a_python_callable_can_be_passed_directly(conn: sqlite3.Connection) -> None:
    def seed(connection: Any) -> None:
        connection.execute("CREATE TABLE seeded (x)")

    migrations = load_migrations(seed, setting="dbscope_seed")

    assert migrations.spec == f"{__name__}:{seed.__qualname__}"
    assert [s.name for s in migrations.steps] == [f"{__name__}:{seed.__qualname__}"]
    migrations.apply(conn)
    assert tables(conn) == ["seeded"]


def test_a_failing_callable_raises_migration_error_naming_it(module_dir: Path, conn: sqlite3.Connection) -> None:
    migrations = load_migrations("shop_schema:broken")
    with pytest.raises(
        MigrationError, match=r"migration failed in shop_schema:broken: ValueError: no products today"
    ) as info:
        migrations.apply(conn)
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.source == "shop_schema:broken"


def test_keyboard_interrupt_is_not_swallowed(module_dir: Path, conn: sqlite3.Connection) -> None:
    with pytest.raises(KeyboardInterrupt):
        load_migrations("shop_schema:interrupted").apply(conn)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:migrate", r"cannot import 'no_such_module_xyz' .*ModuleNotFoundError.*sys\.path"),
        ("shop_schema:nope", r"'shop_schema' has no attribute 'nope' \(no 'nope'\); define it"),
        ("shop_schema:Schema.nope", r"has no attribute 'Schema\.nope' \(no 'nope'\)"),
        ("shop_schema:NOT_CALLABLE", r"'shop_schema:NOT_CALLABLE' is a int, not a callable; point it at a function"),
        ("shop_schema:path/to/alembic.ini", r"is not package\.module:callable"),
    ],
)
def test_a_bad_callable_spec_is_a_config_error(module_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^dbscope_migrations: .*" + message):
        load_migrations(spec, base_dir=module_dir)


def test_a_missing_path_is_a_config_error_saying_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_migrations("migrationz", base_dir=tmp_path)
    assert str(info.value) == (
        f"dbscope_migrations: 'migrationz' does not exist (resolved to {tmp_path / 'migrationz'}, "
        f"relative to {tmp_path}); point it at a directory of .sql files, one .sql file, "
        "package.module:callable, package.module:Base.metadata, or alembic:path/to/alembic.ini"
    )


def test_a_missing_absolute_path_does_not_claim_a_base(tmp_path: Path) -> None:
    missing = tmp_path / "gone.sql"
    with pytest.raises(ConfigError, match=r"dbscope_seed: '.*gone\.sql' does not exist \(resolved to [^,]*\); point"):
        load_migrations(str(missing), setting="dbscope_seed", base_dir=tmp_path / "x")


def test_a_directory_without_sql_files_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / "migrations/notes.txt", "nothing")
    with pytest.raises(
        ConfigError, match=r"^dbscope_seed: directory 'migrations' \(resolved to .*\) contains no \.sql files; add"
    ):
        load_migrations("migrations", setting="dbscope_seed", base_dir=tmp_path)


def test_a_file_that_is_not_sql_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / "alembic.ini", "[alembic]")
    with pytest.raises(ConfigError, match=r"'alembic\.ini' \(resolved to .*\) is not a \.sql file"):
        load_migrations("alembic.ini", base_dir=tmp_path)


# --- reading files ---------------------------------------------------------------


def test_a_file_with_no_statements_is_a_migration_error(tmp_path: Path) -> None:
    write(tmp_path / "m/0001_empty.sql", "-- nothing yet; really\n/* ; */\n  ;\n")
    with pytest.raises(
        MigrationError, match=r"migration m/0001_empty\.sql contains no SQL statements; delete it or add statements"
    ):
        load_migrations("m", base_dir=tmp_path)


def test_a_non_utf8_file_is_a_migration_error_with_the_offset(tmp_path: Path) -> None:
    (tmp_path / "latin1.sql").write_bytes("SELECT 1;\nSELECT 'café';".encode("latin-1"))
    with pytest.raises(
        MigrationError,
        match=r"migration latin1\.sql is not valid UTF-8: byte b'\\xe9' at offset 21 \(line 2\); save .* as UTF-8",
    ) as info:
        load_migrations("latin1.sql", base_dir=tmp_path)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_a_utf8_bom_is_allowed(tmp_path: Path, conn: sqlite3.Connection) -> None:
    (tmp_path / "bom.sql").write_bytes("\ufeffCREATE TABLE t (x);\nINSERT INTO t VALUES ('é');".encode())
    migrations = load_migrations("bom.sql", base_dir=tmp_path)
    (step,) = migrations.steps
    assert isinstance(step, SqlFileStep)
    assert step.statements[0] == Statement("CREATE TABLE t (x)", 1)
    migrations.apply(conn)
    assert conn.execute("SELECT x FROM t").fetchall() == [("é",)]


# --- applying --------------------------------------------------------------------


def test_a_broken_statement_names_the_file_statement_line_and_database_message(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    write(tmp_path / "migrations/0001_users.sql", "CREATE TABLE users (id INT);")
    write(
        tmp_path / "migrations/0002_orders.sql",
        """\
        -- orders belong to users
        CREATE TABLE orders (id INT);

        INSERT INTO orders VALUES (1);
        INSERT INTO userz
          VALUES (2);
        """,
    )
    migrations = load_migrations("migrations", base_dir=tmp_path)

    with pytest.raises(MigrationError) as info:
        migrations.apply(conn)

    assert str(info.value) == (
        "migration failed in migrations/0002_orders.sql, line 5 (statement 3): no such table: userz\n"
        "    5 | INSERT INTO userz\n"
        "      |             ^\n"
        "    6 |   VALUES (2)\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )
    error = info.value
    assert (error.source, error.statement_index, error.line) == ("migrations/0002_orders.sql", 3, 5)
    assert error.statement == "INSERT INTO userz\n  VALUES (2)"
    assert isinstance(error.__cause__, sqlite3.OperationalError)


def test_a_long_failing_statement_is_shortened_in_the_message(tmp_path: Path, conn: sqlite3.Connection) -> None:
    long_values = ", ".join(f"'{n:04}'" for n in range(200))
    write(tmp_path / "long.sql", f"INSERT INTO missing VALUES ({long_values});")
    shortened = r"\n    1 \| INSERT INTO missing VALUES \('0000', .{120,160}\.\.\.\n      \|             \^\nFix"
    with pytest.raises(MigrationError, match=shortened) as info:
        load_migrations("long.sql", base_dir=tmp_path).apply(conn)
    assert info.value.statement is not None and len(info.value.statement) > 1000


# --- splitting -------------------------------------------------------------------


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_statements(text)]


def test_semicolons_in_strings_identifiers_and_comments_do_not_split() -> None:
    text = """
        INSERT INTO t VALUES ('a;b', 'it''s; fine');  -- a comment; with a semicolon
        SELECT "odd;name", `tick;name`, [bracket;name] FROM t; /* block; comment */
        SELECT 1 /* inner; */ + 2
    """
    assert sqls(text) == [
        "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
        'SELECT "odd;name", `tick;name`, [bracket;name] FROM t',
        "SELECT 1 /* inner; */ + 2",
    ]


def test_a_trailing_statement_without_semicolon_counts_and_trailing_comments_are_dropped() -> None:
    assert sqls("SELECT 1;\nSELECT 2 -- last one\n-- end of file") == ["SELECT 1", "SELECT 2"]
    assert sqls("  ;; -- only comments ;\n/* ; */ ; ") == []


def test_dollar_quoted_bodies_do_not_split() -> None:
    text = """
        CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.x := 1; RETURN NEW; END; $$ LANGUAGE plpgsql;
        CREATE FUNCTION g() RETURNS text AS $body$ SELECT '$$;'; $body$ LANGUAGE sql;
        SELECT $1, price$usd FROM t
    """
    assert sqls(text) == [
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.x := 1; RETURN NEW; END; $$ LANGUAGE plpgsql",
        "CREATE FUNCTION g() RETURNS text AS $body$ SELECT '$$;'; $body$ LANGUAGE sql",
        "SELECT $1, price$usd FROM t",
    ]


TRIGGERS = """\
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, kind TEXT, end_date TEXT);
CREATE TABLE audit (msg TEXT);
CREATE TRIGGER users_kind AFTER INSERT ON users
BEGIN
  UPDATE users SET kind = CASE WHEN NEW.name LIKE 'admin%' THEN 'admin;' ELSE 'user' END
   WHERE id = NEW.id;
  INSERT INTO audit VALUES (CASE NEW.id WHEN 1 THEN 'first' ELSE 'later' END);
END;
create temporary trigger if not exists users_gone after delete on users begin
  insert into audit values ('gone;' || OLD.name);
end;
INSERT INTO users (name) VALUES ('admin ana'), ('bob');
"""


def test_trigger_bodies_with_case_are_one_statement(conn: sqlite3.Connection) -> None:
    statements = split_statements(TRIGGERS)

    assert [(s.sql.split()[:3], s.line) for s in statements] == [
        (["CREATE", "TABLE", "users"], 1),
        (["CREATE", "TABLE", "audit"], 2),
        (["CREATE", "TRIGGER", "users_kind"], 3),
        (["create", "temporary", "trigger"], 9),
        (["INSERT", "INTO", "users"], 12),
    ]
    assert statements[2].sql.endswith("'later' END);\nEND")
    for statement in statements:
        conn.execute(statement.sql)
    conn.execute("DELETE FROM users WHERE name = 'bob'")
    assert conn.execute("SELECT name, kind FROM users").fetchall() == [("admin ana", "admin;")]
    assert conn.execute("SELECT msg FROM audit").fetchall() == [("first",), ("later",), ("gone;bob",)]


MARIADB_TRIGGER = """CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW
BEGIN
  DECLARE i INT DEFAULT 0;
  IF NEW.a < 0 THEN SET NEW.a = 0; ELSEIF NEW.a > 9 THEN SET NEW.a = 9; END IF;
  CASE NEW.b WHEN 1 THEN SET NEW.c = 'one'; ELSE SET NEW.c = CASE WHEN NEW.b > 1 THEN 'many' END; END CASE;
  WHILE i < 2 DO SET i = i + 1; END WHILE;
  lbl: LOOP LEAVE lbl; END LOOP;
  REPEAT SET i = i - 1; UNTIL i = 0 END REPEAT;
END"""


def test_a_mariadb_trigger_with_if_case_and_loops_is_one_statement() -> None:
    assert sqls(f"CREATE TABLE x (a int);\n{MARIADB_TRIGGER};\nSELECT 1;") == [
        "CREATE TABLE x (a int)",
        MARIADB_TRIGGER,
        "SELECT 1",
    ]


def test_a_postgres_trigger_without_a_body_ends_at_its_semicolon() -> None:
    text = "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f(); BEGIN; SELECT 1; END;"
    assert sqls(text) == [
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
        "BEGIN",
        "SELECT 1",
        "END",
    ]


def test_line_numbers_are_those_of_each_statements_first_token() -> None:
    text = "-- header\n\nCREATE TABLE a (x);  SELECT 'multi\nline';\n/* c\n */ SELECT 2;\n\n  SELECT 3"
    assert split_statements(text) == [
        Statement("CREATE TABLE a (x)", 3),
        Statement("SELECT 'multi\nline'", 3),
        Statement("SELECT 2", 6),
        Statement("SELECT 3", 8),
    ]


# Statements built from pieces that each hide a ';' or a comment, never starting or
# ending with a comment, so splitting the joined text must give each back exactly.
_piece = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    st.text(alphabet='ab ;-*/"$[]\n', max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.text(alphabet="ab ;'-*/$", max_size=8).map(lambda s: '"' + s + '"'),
    st.text(alphabet="ab ;'\"-/$", max_size=8).map(lambda s: "/*" + s + "*/"),
    st.text(alphabet="ab ;'\"*/$", max_size=8).map(lambda s: "--" + s + "\n"),
    st.sampled_from(["=", ",", "(", ")", "+", "||"]),
)
_statement = st.builds(
    lambda head, pieces, tail: " ".join([head, *pieces, tail]),
    st.sampled_from(["SELECT", "INSERT INTO t VALUES", "UPDATE t SET x =", "DELETE FROM t WHERE"]),
    st.lists(_piece, max_size=8),
    st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True),
)


@given(st.lists(_statement, max_size=6), st.sampled_from(["", "\n", "-- start;\n", "/* ; */ "]))
def test_joining_then_splitting_gives_the_statements_back(statements: list[str], prefix: str) -> None:
    text = prefix + ";\n".join(statements)
    expected_lines, offset = [], len(prefix)
    for statement in statements:
        expected_lines.append(text.count("\n", 0, offset) + 1)
        offset += len(statement) + 2

    result = split_statements(text)

    assert [s.sql for s in result] == statements
    assert [s.line for s in result] == expected_lines


# --- fingerprints ----------------------------------------------------------------


def make_dir(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        write(root / "migrations" / name, text)
    return root


FILES = {"0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "CREATE TABLE b (y);"}


def test_fingerprint_is_stable_for_the_same_names_and_content(tmp_path: Path) -> None:
    one = load_migrations("migrations", base_dir=make_dir(tmp_path / "one", FILES))
    two = load_migrations("migrations", base_dir=make_dir(tmp_path / "two", FILES))

    assert one.fingerprint == two.fingerprint == load_migrations("migrations", base_dir=tmp_path / "one").fingerprint
    assert len(one.fingerprint) == 16
    int(one.fingerprint, 16)


@pytest.mark.parametrize(
    "changed",
    [
        {"0001_a.sql": "CREATE TABLE a (x); ", "0002_b.sql": "CREATE TABLE b (y);"},
        {"0001_a.sql": "CREATE TABLE a (x);", "0003_b.sql": "CREATE TABLE b (y);"},
        {"0001_a.sql": "CREATE TABLE a (x);"},
    ],
    ids=["content", "name", "missing-file"],
)
def test_fingerprint_changes_with_content_or_names(tmp_path: Path, changed: dict[str, str]) -> None:
    original = load_migrations("migrations", base_dir=make_dir(tmp_path / "one", FILES))
    other = load_migrations("migrations", base_dir=make_dir(tmp_path / "two", changed))
    assert original.fingerprint != other.fingerprint


def test_fingerprint_changes_with_order(tmp_path: Path) -> None:
    steps = load_migrations("migrations", base_dir=make_dir(tmp_path, FILES)).steps
    assert MigrationSet("x", steps).fingerprint != MigrationSet("x", steps[::-1]).fingerprint
    assert MigrationSet("x", steps).fingerprint == MigrationSet("y", steps).fingerprint


def test_a_callable_fingerprint_follows_its_module_source(module_dir: Path) -> None:
    before = load_migrations("shop_schema:migrate").fingerprint
    assert load_migrations("shop_schema:migrate").fingerprint == before
    assert load_migrations("shop_schema:Schema.create").fingerprint != before
    with (module_dir / "pkg/shop_schema.py").open("a") as source:
        source.write("\n# edited\n")
    assert load_migrations("shop_schema:migrate").fingerprint != before


def test_combined_fingerprint_is_order_sensitive_and_versioned(tmp_path: Path) -> None:
    make_dir(tmp_path, FILES)
    migrations = load_migrations("migrations", base_dir=tmp_path)
    seed = load_migrations("migrations/0001_a.sql", base_dir=tmp_path, setting="dbscope_seed")
    empty = MigrationSet()

    combined = combined_fingerprint(migrations, seed)
    assert len(combined) == 16 and combined == combined_fingerprint(migrations, seed)
    assert combined != combined_fingerprint(seed, migrations)
    assert combined_fingerprint(migrations, empty) != combined_fingerprint(empty, migrations)
    assert combined_fingerprint() != combined_fingerprint(empty)
    assert isinstance(FORMAT_VERSION, int)


# --- one scanner for the splitter and the placeholder rewrite ---------------------


def test_the_scanner_cuts_text_into_spans_that_cover_it() -> None:
    text = "SELECT 'a''b', E'\\'', \"x\"\"y\", $é$ ; $é$ /* a /* b */ c */ -- d\n;"
    spans = list(sqlscan.scan(text))

    assert "".join(text[span.start : span.end] for span in spans) == text
    assert [(span.kind, text[span.start : span.end]) for span in spans if span.kind != sqlscan.CODE] == [
        (sqlscan.STRING, "'a''b'"),
        (sqlscan.STRING, "'\\''"),
        (sqlscan.IDENTIFIER, '"x""y"'),
        (sqlscan.DOLLAR, "$é$ ; $é$"),
        (sqlscan.COMMENT, "/* a /* b */ c */"),
        (sqlscan.COMMENT, "-- d\n"),
    ]
    flat = [text[s.start : s.end] for s in sqlscan.scan(text, nested_comments=False) if s.kind == sqlscan.COMMENT]
    assert flat[0] == "/* a /* b */"  # SQLite's rule: the first */ ends it


def test_a_dollar_tag_may_be_non_ascii_for_the_splitter_and_the_placeholder_rewrite() -> None:
    assert translate("SELECT $é$ ? ; $é$, ?", (1,)) == ("SELECT $é$ ? ; $é$, %s", (1,))
    assert translate("SELECT $€x$ :a $€x$, :a", {"a": 1}) == ("SELECT $€x$ :a $€x$, %(a)s", {"a": 1})
    assert sqls("SELECT $é$ ? ; $é$; SELECT ?") == ["SELECT $é$ ? ; $é$", "SELECT ?"]


def test_an_escape_string_ends_at_its_quote_for_both_readers() -> None:
    text = "SELECT E'a''\\'?;' ; SELECT ?"  # E'a''\'?;': '' and \' are quotes inside it
    assert sqls(text) == ["SELECT E'a''\\'?;'", "SELECT ?"]
    assert translate(text, (1,)) == ("SELECT E'a''\\'?;' ; SELECT %s", (1,))


# --- what the fingerprint covers -------------------------------------------------


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], Path]]:
    """Write modules into a directory on sys.path; they are forgotten again after each load."""
    root = tmp_path / "src"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)

    def put(relative: str, source: str) -> Path:
        path = write(root / relative, source)
        forget()
        return path

    def forget() -> None:
        for name in set(sys.modules) - before:
            del sys.modules[name]
        importlib.invalidate_caches()

    yield put
    forget()


SHOP_INIT = """
from sqlalchemy.orm import DeclarativeBase

class Base(DeclarativeBase):
    pass

from .users import User  # noqa: E402
"""
SHOP_USERS = """
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column
from . import Base
from .orders import Order  # noqa: F401

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    __table_args__ = (Index("ix_users_both", "email", "name"),)
"""
SHOP_ORDERS = """
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column
from . import Base

class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
"""


def test_a_metadata_fingerprint_follows_the_ddl_of_every_model_module(
    importable: Callable[[str, str], Path],
) -> None:
    importable("shop/__init__.py", SHOP_INIT)
    importable("shop/users.py", SHOP_USERS)
    orders = importable("shop/orders.py", SHOP_ORDERS)
    before = load_migrations("shop:Base.metadata").fingerprint
    (step,) = load_migrations("shop:Base.metadata").steps
    assert isinstance(step, MetadataStep)
    assert b"CREATE INDEX ix_users_both ON users (email, name)" in step.ddl
    assert step.ddl.count(b"CREATE TABLE orders") == 2  # SQLite's DDL and PostgreSQL's

    importable("shop/orders.py", SHOP_ORDERS + "\n# a comment changes no DDL\n")
    assert load_migrations("shop:Base.metadata").fingerprint == before

    importable("shop/orders.py", SHOP_ORDERS + "    note: Mapped[str | None]\n")
    after = load_migrations("shop:Base.metadata").fingerprint
    assert after != before, f"a column added in {orders.name} must rebuild the template"


def test_a_metadata_fingerprint_is_the_same_in_every_process(
    importable: Callable[[str, str], Path], tmp_path: Path
) -> None:
    importable("shop/__init__.py", SHOP_INIT)
    importable("shop/users.py", SHOP_USERS)
    importable("shop/orders.py", SHOP_ORDERS)
    code = "from dbscope.migrations import load_migrations; print(load_migrations('shop:Base.metadata').fingerprint)"
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": str(tmp_path / "src"), "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (1, 2, 3)
    }
    assert prints == {load_migrations("shop:Base.metadata").fingerprint}  # index order is a set's: sorted


def test_a_metadata_fingerprint_covers_what_only_postgresql_creates(importable: Callable[[str, str], Path]) -> None:
    models = """
    import enum
    import sqlalchemy as sa

    metadata = sa.MetaData()

    class Size(enum.Enum):
        S = 1
        M = 2{more}

    sa.Table("shirts", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("size", sa.Enum(Size)))
    """
    importable("shirts.py", models.format(more=""))
    before = load_migrations("shirts:metadata").fingerprint
    importable("shirts.py", models.format(more="\n        L = 3"))  # SQLite's VARCHAR(1) stays; the TYPE changes
    assert load_migrations("shirts:metadata").fingerprint != before


def test_a_callable_fingerprint_follows_every_module_of_its_package(importable: Callable[[str, str], Path]) -> None:
    importable("schema_pkg/__init__.py", "")
    importable("schema_pkg/steps.py", "from .helpers import COLUMNS\n\ndef migrate(conn):\n    conn.execute(COLUMNS)\n")
    importable("schema_pkg/helpers.py", 'COLUMNS = "CREATE TABLE t (a)"\n')
    importable("schema_pkg/sql/extra.sql", "CREATE TABLE extra (x);\n")
    before = load_migrations("schema_pkg.steps:migrate").fingerprint
    assert load_migrations("schema_pkg.steps:migrate").fingerprint == before

    importable("schema_pkg/helpers.py", 'COLUMNS = "CREATE TABLE t (a, b)"\n')
    after_helper = load_migrations("schema_pkg.steps:migrate").fingerprint
    importable("schema_pkg/sql/extra.sql", "CREATE TABLE extra (x, y);\n")  # a file the callable might read
    after_sql = load_migrations("schema_pkg.steps:migrate").fingerprint

    assert len({before, after_helper, after_sql}) == 3


def test_a_callable_fingerprint_follows_the_project_modules_it_imports(importable: Callable[[str, str], Path]) -> None:
    importable(
        "toplevel_schema.py",
        """
        import json
        import pytest

        def migrate(conn):
            from ddl_helpers.columns import DDL
            conn.execute(DDL)
        """,
    )
    importable("ddl_helpers/__init__.py", "")
    importable("ddl_helpers/columns.py", 'DDL = "CREATE TABLE t (a)"\n')
    importable("unrelated.py", "X = 1\n")
    before = load_migrations("toplevel_schema:migrate").fingerprint

    importable("unrelated.py", "X = 2\n")  # beside it, but not imported: no rebuild
    assert load_migrations("toplevel_schema:migrate").fingerprint == before
    importable("ddl_helpers/columns.py", 'DDL = "CREATE TABLE t (a, b)"\n')  # imported inside the function
    assert load_migrations("toplevel_schema:migrate").fingerprint != before


def test_an_installed_callable_is_keyed_by_its_own_source_only() -> None:
    (step,) = load_migrations("json:loads").steps
    assert isinstance(step, CallableStep)
    assert step.source.endswith(Path(json.__file__).read_bytes())
    assert b"json.decoder" not in step.source  # another installed module: not read
