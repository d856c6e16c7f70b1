"""parse_backend_url for every scheme, and mask_password on URLs and libpq DSNs."""

from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import pytest

from dbscope.errors import ConfigError
from dbscope.urls import BackendURL, mask_password, parse_backend_url, without_password

# --- parse_backend_url ------------------------------------------------------------------

SQLITE = [
    # url, kind, path, query
    ("sqlite://", "memory", None, ""),
    ("sqlite:///", "memory", None, ""),
    ("sqlite+memory://", "memory", None, ""),
    ("SQLite://", "memory", None, ""),
    ("sqlite://?cache=private", "memory", None, "cache=private"),
    ("sqlite:///tmp/dbs", "file", "tmp/dbs", ""),
    ("sqlite:////var/tmp/dbs", "file", "/var/tmp/dbs", ""),
    ("sqlite:///my%20dbs?mode=rwc", "file", "my dbs", "mode=rwc"),
    ("sqlite+file://", "file", None, ""),
    ("sqlite+file:///dbs", "file", "dbs", ""),
    ("  sqlite:///dbs\n", "file", "dbs", ""),
]


@pytest.mark.parametrize(("url", "kind", "path", "query"), SQLITE, ids=[s[0].strip() for s in SQLITE])
def test_sqlite_urls_give_memory_or_a_directory_of_files(url: str, kind: str, path: str | None, query: str) -> None:
    parsed = parse_backend_url(url)

    assert (parsed.family, parsed.kind, parsed.path, parsed.query) == ("sqlite", kind, path, query)
    assert parsed.raw == url.strip()
    assert (parsed.host, parsed.port, parsed.user, parsed.password, parsed.database) == (None,) * 5


POSTGRESQL: list[tuple[str, dict[str, Any]]] = [
    (
        "postgresql://app:s3cr3t@db.example.com:5433/app_test?sslmode=require",
        {
            "kind": "server",
            "host": "db.example.com",
            "port": 5433,
            "user": "app",
            "password": "s3cr3t",
            "database": "app_test",
            "query": "sslmode=require",
        },
    ),
    (
        "postgresql://localhost/app",
        {"kind": "server", "host": "localhost", "port": None, "user": None, "database": "app"},
    ),
    (
        "postgres://app@localhost:5432",
        {"kind": "server", "host": "localhost", "port": 5432, "user": "app", "database": None},
    ),
    (
        "postgresql+psycopg://app@LocalHost/app",
        {"kind": "server", "host": "localhost", "user": "app", "database": "app"},
    ),
    ("postgresql://a%40b:p%40ss%2Fw@h/my%20db", {"user": "a@b", "password": "p@ss/w", "database": "my db"}),
    ("postgresql://app@[::1]:5432/app", {"host": "::1", "port": 5432}),
    ("postgresql+proc://", {"kind": "proc", "host": None, "port": None, "user": None, "database": None}),
    ("postgresql+proc:///app", {"kind": "proc", "database": "app"}),
]


@pytest.mark.parametrize(("url", "expected"), POSTGRESQL, ids=[p[0] for p in POSTGRESQL])
def test_postgresql_urls_are_split_into_their_parts(url: str, expected: dict[str, Any]) -> None:
    parsed = parse_backend_url(url)

    assert parsed.family == "postgresql"
    assert {name: getattr(parsed, name) for name in expected} == expected
    assert parsed.path is None


def test_a_parsed_url_is_frozen() -> None:
    parsed = parse_backend_url("sqlite://")

    with pytest.raises(AttributeError, match="cannot assign to field 'kind'"):
        parsed.kind = "file"  # type: ignore[misc]


BAD_URLS = [
    (
        "",
        (
            r"^'' is not a URL; use sqlite:// \(SQLite in memory\), sqlite:///some/dir \(SQLite files\), "
            r"postgresql://user@host:port/db \(a PostgreSQL server\), "
            r"postgresql\+proc:// \(a throwaway PostgreSQL cluster\), "
            r"mysql://user@host:port/ \(a MariaDB/MySQL server\) or mysql\+proc:// \(a throwaway MariaDB server\)$"
        ),
    ),
    ("localhost:5432/app", r"^'localhost:5432/app' is not a URL; use sqlite://"),
    (
        "oracle://app@localhost/app",
        (
            r"^unknown URL scheme 'oracle' in 'oracle://app@localhost/app'; known schemes: mariadb, mariadb\+proc, "
            r"mysql, mysql\+proc, mysql\+pymysql, postgres, postgresql, postgresql\+proc, postgresql\+psycopg, "
            r"sqlite, sqlite\+file, sqlite\+memory$"
        ),
    ),
    ("sqlite+aiosqlite://", r"^unknown URL scheme 'sqlite\+aiosqlite'"),
    (
        "sqlite://host/dir",
        (
            r"^'sqlite://host/dir': a sqlite:// URL names a directory, not a host \('sqlite://host/dir'\); "
            r"use sqlite:// \(SQLite in memory\) or sqlite:///some/dir \(SQLite files\)$"
        ),
    ),
    (
        "postgresql://u@h:notaport/db",
        r"^malformed URL 'postgresql://u@h:notaport/db': Port could not be cast to integer value as 'notaport'$",
    ),
    ("postgresql://u@h:70000/db", r"^malformed URL 'postgresql://u@h:70000/db': Port out of range 0-65535$"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[b[0] or "empty" for b in BAD_URLS])
def test_a_bad_url_raises_config_error_saying_what_to_give(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_backend_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "oracle://app:s3cr3t@localhost/app",
        "postgresql://app:s3cr3t@h:notaport/db",
        "sqlite://app:s3cr3t@host/dir",
        "postgresql://app:s3cr3t@h:70000/db",
    ],
)
def test_a_bad_url_is_reported_with_its_password_masked(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("app:***@")) as info:
        parse_backend_url(url)

    assert "s3cr3t" not in str(info.value)


def test_a_parsed_url_shows_itself_with_the_password_masked() -> None:
    parsed = parse_backend_url("postgresql://app:s3cr3t@localhost/app")

    assert parsed.password == "s3cr3t"
    assert parsed.masked == "postgresql://app:***@localhost/app"
    assert repr(parsed) == "BackendURL('postgresql://app:***@localhost/app')"
    assert "s3cr3t" not in f"{parsed!r} {[parsed]} {(parsed,)}"  # str() is the URL itself, as the setting's text was


def test_a_parsed_url_is_the_url_itself_as_a_string() -> None:
    text = "postgresql://app@localhost:5432/app"
    parsed = parse_backend_url(text)

    assert isinstance(parsed, str) and isinstance(parsed, BackendURL)
    assert parsed == text and hash(parsed) == hash(text) and {text: 1}[parsed] == 1
    assert str(parsed) == text and type(str(parsed)) is str and f"{parsed}" == text
    assert parse_backend_url(parsed) is parsed  # parsed once: a parsed URL is not parsed again
    assert parsed.entry.title == "a PostgreSQL server"


def test_a_parsed_url_survives_pickle_copy_and_replace_with_its_registry_entry() -> None:
    parsed = parse_backend_url("sqlite:///dbs?mode=rwc")

    for again in (pickle.loads(pickle.dumps(parsed)), copy.deepcopy(parsed), copy.copy(parsed)):
        assert again == parsed and again.entry is parsed.entry
        assert (again.path, again.query) == ("dbs", "mode=rwc")
    moved = parsed.resolved("/srv/app")
    assert (moved, moved.path, moved.entry) == ("sqlite:///dbs?mode=rwc", "/srv/app/dbs", parsed.entry)
    assert parse_backend_url("sqlite:////abs/dbs").resolved("/srv/app").path == "/abs/dbs"


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("sqlite://", "SQLite in memory"),
        ("sqlite+memory://", "SQLite in memory"),
        ("sqlite:///dbs", "SQLite files"),
        ("sqlite+memory:///dbs", "SQLite files"),
        ("sqlite+file://", "SQLite files"),
        ("postgres://u@h/db", "a PostgreSQL server"),
        ("postgresql+psycopg://u@h/db", "a PostgreSQL server"),
        ("postgresql+proc://", "a throwaway PostgreSQL cluster"),
    ],
)
def test_every_url_knows_its_backend_in_the_registry(url: str, title: str) -> None:
    assert parse_backend_url(url).entry.title == title


# --- without_password ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("postgresql://app:s3cr3t@localhost:5432/db", "postgresql://app@localhost:5432/db"),
        ("postgresql://app:p%40ss@[::1]:5432/db?sslmode=disable", "postgresql://app@[::1]:5432/db?sslmode=disable"),
        ("postgresql://app@localhost/db", "postgresql://app@localhost/db"),
        ("postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"),
        ("/tmp/dbscope_x.sqlite3", "/tmp/dbscope_x.sqlite3"),
    ],
)
def test_without_password_leaves_the_user_for_tools_that_ask_for_the_password(url: str, plain: str) -> None:
    assert without_password(url) == plain


# --- mask_password ----------------------------------------------------------------------

MASKED = [
    # text, masked
    ("postgresql://app:s3cr3t@localhost:5432/app", "postgresql://app:***@localhost:5432/app"),
    ("postgresql+asyncpg://app:s3cr3t@localhost/app", "postgresql+asyncpg://app:***@localhost/app"),
    ("postgresql://:s3cr3t@localhost/app", "postgresql://:***@localhost/app"),
    ("postgresql://app:@localhost/app", "postgresql://app:***@localhost/app"),
    ("postgresql://app:p@ss:w@localhost/app", "postgresql://app:***@localhost/app"),  # a raw '@' in the password
    ("postgresql://:0/S3CR3T@localhost/", "postgresql://:***@localhost/"),  # no user, digits then '/' in the password
    (
        "postgresql://app:s3cr3t@localhost/app?application_name=a@b",
        "postgresql://app:***@localhost/app?application_name=a@b",
    ),
    ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
    ("host=localhost password=s3cr3t dbname=app", "host=localhost password=*** dbname=app"),
    ("host=localhost PASSWORD = s3cr3t", "host=localhost PASSWORD = ***"),
    ("password='s3 cr3t' host=localhost", "password=*** host=localhost"),
    (r"password='it\'s s3cr3t' host=localhost", "password=*** host=localhost"),
    ("postgresql://localhost/app?password=s3cr3t", "postgresql://localhost/app?password=***"),
    (
        "from 'postgresql://a:s3cr3t@h1/db' to 'postgresql://b:0th3r@h2/db'",
        "from 'postgresql://a:***@h1/db' to 'postgresql://b:***@h2/db'",
    ),
]


@pytest.mark.parametrize(("text", "masked"), MASKED, ids=[m[0] for m in MASKED])
def test_mask_password_hides_every_password_in_urls_and_dsns(text: str, masked: str) -> None:
    assert mask_password(text) == masked


UNCHANGED = [
    "sqlite://",
    "sqlite:////var/tmp/dbs",
    "postgresql://app@localhost:5432/app",
    "postgresql://localhost:5432/app?target_session_attrs=read-write",
    "postgresql://localhost:5432/app?note=x@y",
    "host=localhost user=app dbname=app",
    "no URL here, only an email: ana@example.com",
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_mask_password_leaves_text_without_a_password_unchanged(text: str) -> None:
    assert mask_password(text) == text
