"""Fuzzing the two parsers that read user input: the SQL splitter and the URL parser.

The generators build structured text (statements made of pieces that each hide a ';',
a quote or a comment; URLs whose passwords hold '@', ':', '/', '%', spaces and
unicode), not only random characters, so the fuzzer reaches the states where parsers
break. Oracles are independent of dbscope: SQLite's own ``executescript`` and
``sqlite3.complete_statement``, libpq's URL parsing (psycopg ``conninfo_to_dict``),
and the ground truth the generator knows.

Bounded for CI: each test runs ``DBSCOPE_FUZZ_EXAMPLES`` examples (default 150), with
hypothesis derandomized under ``CI=true`` (the same examples on every CI run: a red CI
is a real regression, never a new random find). Run longer, with fresh random examples,
locally::

    DBSCOPE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:benchmark tests/reliability/test_fuzz.py

A failure found that way is kept in ``.hypothesis/`` and replayed first next time;
fixed bugs stay here as explicit ``@example`` regressions.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dbscope import ConfigError, DbscopeError, MigrationError
from dbscope.backends.registry import BACKENDS
from dbscope.migrations import load_migrations, split_statements
from dbscope.urls import mask_password, parse_backend_url

# load, soak, fault or fuzz: `./run tests --all` and CI run this module, `./run tests` does not
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("DBSCOPE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the splitter: structured SQL-ish text ----------------------------------------------------

_KEYWORDS = {"begin", "end", "case"}
_ident = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_tricky = "ab ;,'\"`[]$-*/\\\n\té€"


def _sq(body: str) -> str:
    return "'" + body.replace("'", "''") + "'"


def _estring(body: str) -> str:
    """A PostgreSQL E'' string: backslash escapes, \\' inside."""
    return "E'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dollar(tag_body: tuple[str, str]) -> str:
    tag, body = tag_body
    body = body.replace(f"${tag}$", "")
    return f"${tag}${body}${tag}$"


_piece = st.one_of(
    _ident,
    st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    st.text(alphabet=_tricky, max_size=12).map(_sq),
    st.text(alphabet=_tricky, max_size=10).map(_estring),
    st.text(alphabet=_tricky.replace('"', ""), max_size=8).map(lambda s: '"' + s + '"'),
    st.text(alphabet=_tricky.replace("`", ""), max_size=8).map(lambda s: "`" + s + "`"),
    st.text(alphabet="ab ;'\"-$", max_size=8).map(lambda s: "[" + s + "]"),
    st.text(alphabet=_tricky, max_size=10).map(lambda s: "/*" + s.replace("*/", "") + "*/"),
    st.text(alphabet=_tricky.replace("\n", ""), max_size=10).map(lambda s: "--" + s + "\n"),
    st.tuples(st.sampled_from(["", "body", "_x1", "é"]), st.text(alphabet=_tricky, max_size=12)).map(_dollar),
    st.sampled_from(["=", ",", "(", ")", "+", "||", "::int", "$1", "price$usd", "-", "/", "*"]),
)
_head = st.sampled_from(["SELECT", "INSERT INTO t VALUES", "UPDATE t SET x =", "DELETE FROM t WHERE", "CREATE TABLE"])
_tail = st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True)
_glue = st.sampled_from([" ", "\n", "\r\n", "\t "])


@st.composite
def _plain_statement(draw: st.DrawFn, *, in_trigger: bool = False) -> str:
    pieces = draw(st.lists(_piece, max_size=8))
    if in_trigger:  # a bare begin/end/case in a trigger body is a keyword, not an identifier
        pieces = [p for p in pieces if p.lower() not in _KEYWORDS]
    tail = draw(_tail.filter(lambda t: not in_trigger or t not in _KEYWORDS))
    text = draw(_head)
    for piece in [*pieces, tail]:
        text += draw(_glue) + piece
    return text


_case = st.builds(
    lambda cond, then, other: f"CASE WHEN {cond} THEN {then} ELSE {other} END",
    _ident.filter(lambda t: t not in _KEYWORDS),
    st.text(alphabet=_tricky, max_size=6).map(_sq),
    st.sampled_from(["0", "'x;'", "NEW.v"]),
)


@st.composite
def _trigger(draw: st.DrawFn) -> str:
    create = draw(st.sampled_from(["CREATE TRIGGER", "create temp trigger", "CREATE TEMPORARY TRIGGER"]))
    body = []
    for _ in range(draw(st.integers(1, 3))):
        statement = draw(_plain_statement(in_trigger=True))
        if draw(st.booleans()):  # CASE ... END, sometimes right before the ';' (SQLite's own quirk)
            statement = f"{statement} = {draw(_case)}" if draw(st.booleans()) else f"{draw(_case)} {statement}"
        body.append(statement)
    return f"{create} trg AFTER INSERT ON t BEGIN\n  " + ";\n  ".join(body) + ";\nEND"


_statement = st.one_of(_plain_statement(), _plain_statement(), _trigger())
_filler = st.lists(
    st.sampled_from([" ", "\n", "\r\n", "\t", ";", "-- c;'\"$$\n", "/* c;'\" $$ -- */", "\n\n"]), max_size=4
).map("".join)


@dataclass
class Script:
    text: str
    statements: list[str]
    lines: list[int]


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    """Statements joined by ';' and filler, with the statements and lines the splitter must give."""
    statements = draw(st.lists(_statement, max_size=6))
    text = draw(_filler)
    lines = []
    for index, statement in enumerate(statements):
        lines.append(text.count("\n") + 1)
        text += statement
        last = index == len(statements) - 1
        if not last or draw(st.booleans()):
            text += ";" + draw(_filler)
        elif draw(st.booleans()):
            text += draw(st.sampled_from([" -- trailing; comment", "\n/* end; */", "\n"]))
    return Script(text, statements, lines)


@FUZZ
@given(scripts())
@example(Script("SELECT E'it\\'s; ok' x;SELECT 2", ["SELECT E'it\\'s; ok' x", "SELECT 2"], [1, 1]))
@example(Script("SELECT $é$;$é$ x;\nSELECT 2", ["SELECT $é$;$é$ x", "SELECT 2"], [1, 2]))
def test_the_splitter_gives_back_exactly_the_statements_it_was_built_from(script: Script) -> None:
    result = split_statements(script.text)

    assert [s.sql for s in result] == script.statements
    assert [s.line for s in result] == script.lines


def _sqlite_dialect(statement: str) -> bool:
    """SQLite reads neither E'' strings nor dollar quotes: its tokenizer is no oracle for them."""
    return "E'" not in statement and "$" not in statement


@FUZZ
@given(scripts())
def test_each_statement_ends_where_sqlites_own_tokenizer_says_it_does(script: Script) -> None:
    for statement in split_statements(script.text):
        if not _sqlite_dialect(statement.sql):
            continue
        assert sqlite3.complete_statement(statement.sql + ";"), statement.sql
        if "TRIGGER" in statement.sql.upper()[:30]:
            continue  # SQLite's tokenizer ends a trigger at "END;" even after a CASE (dbscope does not)
        cut = [
            i for i, ch in enumerate(statement.sql) if ch == ";" and sqlite3.complete_statement(statement.sql[: i + 1])
        ]
        assert cut == [], f"SQLite ends {statement.sql!r} early, at offset {cut}"


@FUZZ
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
    | st.text(alphabet=_tricky + "BEGINDCASTR", max_size=300)
)
@example("CREATE TRIGGER x BEGIN SELECT 'unterminated")
@example("SELECT $tag$ never closed; SELECT 2")
def test_any_text_splits_into_trimmed_substrings_in_order_without_raising(text: str) -> None:
    result = split_statements(text)

    position = 0
    for index, statement in enumerate(result):
        assert statement.sql and statement.sql == statement.sql.lstrip()
        if index < len(result) - 1:  # only an unterminated quote, running to the end, keeps trailing space
            assert statement.sql == statement.sql.rstrip()
        assert not statement.sql.startswith(("--", "/*")) and not statement.sql.startswith(";")
        # it is a piece of the text, after the previous one, on the line it names
        candidates = []
        found = text.find(statement.sql, position)
        while found >= 0:
            candidates.append(found)
            found = text.find(statement.sql, found + 1)
        at = next((c for c in candidates if text.count("\n", 0, c) + 1 == statement.line), None)
        assert at is not None, f"{statement!r} is not in the text at line {statement.line}"
        position = at + len(statement.sql)
    # splitting the statements joined again gives them back
    again = split_statements(";\n".join(s.sql for s in result))
    assert [s.sql for s in again] == [s.sql for s in result]


# Executable SQLite scripts: split and run statement by statement must leave the database
# exactly as SQLite's own executescript() (its real parser) leaves it.
_value = st.text(alphabet=_tricky.replace("\\", "") + "%_", max_size=10).map(_sq)
_runnable = st.one_of(
    _value.map(lambda v: f"INSERT INTO t (v) VALUES ({v})"),
    st.tuples(_value, _value).map(lambda p: f'INSERT INTO "odd;name" VALUES ({p[0]}) /* x; */, ({p[1]})'),
    _value.map(lambda v: f"INSERT INTO [br;acket] -- a comment; with 'quotes'\n VALUES ({v})"),
    _value.map(lambda v: f"UPDATE t SET v = CASE WHEN v = {v} THEN 'hit;' ELSE v END"),
    _value.map(lambda v: f"DELETE FROM t WHERE v = {v}"),
    st.tuples(st.integers(0, 10**6), _value).map(
        lambda p: (
            f"CREATE TRIGGER IF NOT EXISTS trg_{p[0]} AFTER INSERT ON t BEGIN\n"
            f"  INSERT INTO log VALUES (CASE WHEN NEW.v LIKE '%;%' THEN 'semi;' ELSE {p[1]} END);\n"
            f"  UPDATE log SET m = m || ';' WHERE m = CASE WHEN NEW.v = {p[1]} THEN 'x' ELSE 'y' END;\n"
            "END"
        )
    ),
)
_SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\nCREATE TABLE log (m TEXT);\n"
    'CREATE TABLE "odd;name" (v TEXT);\nCREATE TABLE [br;acket] (v TEXT);\n'
)


@FUZZ
@given(st.lists(st.tuples(_runnable, _filler), max_size=8))
def test_running_the_split_statements_equals_sqlites_executescript(parts: list[tuple[str, str]]) -> None:
    script = _SCHEMA + "".join(f"{statement};{filler}" for statement, filler in parts)
    expected = sqlite3.connect(":memory:")
    actual = sqlite3.connect(":memory:", isolation_level=None)
    try:
        expected.executescript(script)
        statements = split_statements(script)
        assert len(statements) == 4 + len(parts)
        for statement in statements:
            actual.execute(statement.sql)
        assert list(actual.iterdump()) == list(expected.iterdump())
    finally:
        expected.close()
        actual.close()


@FUZZ
@given(st.binary(max_size=200) | st.text(alphabet=_tricky, max_size=200).map(str.encode))
@example(b"\xff\xfeSELECT 1")
@example(b"\xef\xbb\xbf-- only a comment;\n")
def test_a_migration_file_of_any_bytes_loads_or_raises_a_dbscope_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "0001_fuzz.sql").write_bytes(content)
        try:
            loaded = load_migrations(directory)
        except MigrationError as exc:
            assert "0001_fuzz.sql" in str(exc) and ("UTF-8" in str(exc) or "no SQL statements" in str(exc))
            return
        (step,) = loaded.steps
        assert step.statements  # type: ignore[attr-defined]


# -- the URL parser and password masking -------------------------------------------------------

_SCHEMES = [
    "postgresql",
    "postgres",
    "postgresql+psycopg",
    "postgresql+proc",
    "sqlite",
    "sqlite+file",
    "mysql",
    "redis",
]
_user = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=":@/?#%[]", exclude_categories=("Cc", "Zs", "Zl", "Zp")),
    max_size=6,
)
_host = st.sampled_from(["localhost", "127.0.0.1", "[::1]", "db.example.com", "h"])
_port = st.sampled_from(["", ":5432", ":1", ":99999", ":x"])
_db = st.text(alphabet="abc_;é%20", max_size=6)
MARK = "S3CR3T"


@st.composite
def passwords(draw: st.DrawFn, raw_chars: str) -> str:
    """A password with a marker in it, so a leak of any part around the marker is visible."""
    alphabet = st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(raw_chars)
    return draw(st.text(alphabet=alphabet, max_size=6)) + MARK + draw(st.text(alphabet=alphabet, max_size=6))


@dataclass
class SecretURL:
    url: str
    password: str
    encoded: bool


@st.composite
def secret_urls(draw: st.DrawFn) -> SecretURL:
    scheme, user, host, port, db = draw(st.sampled_from(_SCHEMES)), draw(_user), draw(_host), draw(_port), draw(_db)
    query = draw(st.sampled_from(["", "?sslmode=disable", "?application_name=a@b", "?password=" + MARK + "q"]))
    if draw(st.booleans()):  # as a URL must carry it: percent-encoded
        password = draw(passwords("@:/%?# \u00e9\u20ac"))
        return SecretURL(f"{scheme}://{user}:{quote(password, safe='')}@{host}{port}/{db}{query}", password, True)
    # raw, as people paste them: '@', ':', '%', spaces, unicode; '/', '?', '#' after a non-digit
    password = draw(passwords("@:% \t\u00e9"))
    if draw(st.booleans()):
        password = "p" + draw(st.sampled_from(["/", "?", "#", "/x@"])) + password
    return SecretURL(f"{scheme}://{user}:{password}@{host}{port}/{db}{query}", password, False)


def _leaks(text: str, secret: SecretURL) -> bool:
    return secret.password in text or MARK in text or quote(secret.password, safe="") in text


@FUZZ
@given(secret_urls())
@example(SecretURL("postgresql://u:p S3CR3T@h/db", "p S3CR3T", False))  # a space in the password
@example(SecretURL("postgresql://u:p/S3CR3T@h/db", "p/S3CR3T", False))  # a raw '/'
@example(SecretURL("sqlite://u:a\tS3CR3T@h/db", "a\tS3CR3T", False))
@example(SecretURL("postgresql://:S3CR3T?@localhost/", "S3CR3T?", False))  # urlsplit quoted it as the port
def test_a_password_never_shows_in_a_parsed_url_an_error_or_a_masked_text(secret: SecretURL) -> None:
    assert not _leaks(mask_password(secret.url), secret)
    try:
        parsed = parse_backend_url(secret.url)
    except DbscopeError as exc:
        assert isinstance(exc, ConfigError)
        assert not _leaks(str(exc), secret), str(exc)
        return
    assert not _leaks(parsed.masked, secret) and not _leaks(repr(parsed), secret)
    if secret.encoded and parsed.family == "postgresql" and parsed.kind == "server":
        assert parsed.password == secret.password


@FUZZ
@given(st.text(max_size=80) | st.builds(lambda s, r: s + "://" + r, st.sampled_from(_SCHEMES), st.text(max_size=60)))
@example("postgresql://u@h:-1/db")
@example("postgresql://[::1/db")
def test_any_text_parses_or_raises_config_error_and_masking_is_stable(text: str) -> None:
    try:
        parsed = parse_backend_url(text)
    except ConfigError:
        pass
    else:
        assert parsed.family in {entry.family for entry in BACKENDS}  # a backend dbscope has
    masked = mask_password(text)
    assert mask_password(masked) == masked


@FUZZ
@given(passwords("@:/%?# '\\\"=\u00e9").filter(lambda p: "\x00" not in p))  # libpq has no NUL
def test_a_libpq_conninfo_password_is_masked(password: str) -> None:
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo("", host="localhost", password=password, dbname="app")
    masked = mask_password(f"cannot connect with {conninfo}: refused")
    assert MARK not in masked and password not in masked


@FUZZ
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
    passwords("@:/%?# \u00e9").filter(lambda p: "\x00" not in p),
    st.sampled_from(["localhost", "127.0.0.1", "::1", "db.example.com"]),
    st.sampled_from(["", "5432", "6543"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
)
def test_a_rendered_server_url_parses_back_to_the_same_parts(
    user: str, password: str, host: str, port: str, dbname: str
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from dbscope.backends.pg_connect import server_address

    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{'[' + host + ']' if ':' in host else host}"
    url = f"postgresql://{netloc}{':' + port if port else ''}/postgres"
    address = server_address(parse_backend_url(url))

    rendered = address.url(dbname, "dsn")
    again = parse_backend_url(rendered)

    assert (again.user, again.password, again.host, again.database) == (user, password, host.lower(), dbname)
    assert again.port == (int(port) if port else None)
    assert server_address(again).options == {**address.options, "dbname": dbname}
    libpq = conninfo_to_dict(rendered)  # libpq reads the same URL the same way
    assert (libpq["user"], libpq["password"], libpq["dbname"]) == (user, password, dbname)
    assert not _leaks(again.masked, SecretURL(rendered, password, True))


def test_a_large_migration_splits_in_bounded_time(figures) -> None:  # type: ignore[no-untyped-def]
    """20,000 statements with quotes and comments: linear, not quadratic (generous bound)."""
    one = "INSERT INTO t VALUES ('a;b', \"c;d\") /* ; */; -- x;\n"
    started = time.perf_counter()
    statements = split_statements(one * 20_000)
    elapsed = time.perf_counter() - started

    assert len(statements) == 20_000 and statements[-1].line == 20_000
    assert elapsed < 20, f"splitting took {elapsed:.1f} s"
    figures.record(split_20000_statements_ms=round(elapsed * 1000), fuzz_examples_per_target=EXAMPLES)
