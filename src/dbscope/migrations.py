"""Load migration sources, fingerprint them, and apply them to a connection.

A source (the ``dbscope_migrations`` or ``dbscope_seed`` setting) is one of:

* a directory: every ``*.sql`` file directly in it, applied in file-name order;
* one ``.sql`` file;
* ``package.module:callable`` (or the callable itself), called with a DB-API connection;
* ``package.module:Base.metadata``: a SQLAlchemy ``MetaData``, ``create_all`` on the template;
* ``alembic:path/to/alembic.ini``: ``alembic upgrade head`` on the template.

Everything is read and checked when the source is loaded, so a bad file fails before
any database is touched. The fingerprint keys the cached template (a file of a
``sqlite:///dir``, a database kept on a PostgreSQL server): sha256 over each step's
name and digest, in order. A step's digest covers:

* ``.sql`` file: its bytes (its name, relative to the base directory, is in the name);
* ``module:callable``: the step's name and :func:`callable_sources` of the callable's
  module: every ``.py`` and ``.sql`` file under the directory of its top-level package,
  plus every project module it imports, directly or through other project modules (a
  project module: one whose file is neither in the standard library nor in
  site-packages), so a change in a helper module rebuilds the template;
* ``module:Base.metadata``: the step's name and :func:`metadata_ddl`: the DDL
  ``create_all`` emits, compiled for SQLAlchemy's SQLite and its PostgreSQL dialect
  (both, whichever backend runs: the same key everywhere, and a change that shows in
  either dialect's DDL rebuilds the template), so a column added in any module of the
  models does; Python-side defaults and other things that never reach the database do not;
* ``alembic:alembic.ini``: the ini, every ``.py`` and ``.sql`` file under its
  ``script_location`` (``env.py``, the revisions, helpers) and every file under each
  revision directory (``version_locations``, by default ``versions/``);
  ``script.py.mako`` and the README do not, as they only shape new revision files.

Anything else a step reads when it runs (a file outside these, the environment, a
database) is not covered: ``--dbscope-rebuild`` rebuilds the template once.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.machinery
import os
import re
import site
import sqlite3
import sys
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

from . import sqlscan
from .environment import change_env, restore_env
from .errors import ConfigError, MigrationError

__all__ = [
    "DDL_DIALECTS",
    "FORMAT_VERSION",
    "AlembicStep",
    "CallableStep",
    "MetadataStep",
    "MigrationSet",
    "MigrationStep",
    "SqlFileStep",
    "Statement",
    "callable_sources",
    "combined_fingerprint",
    "load_migrations",
    "metadata_ddl",
    "split_statements",
]

#: Bumped when the way templates are built changes, so old cached templates are not reused.
FORMAT_VERSION = 1

_WHAT_TO_GIVE = (
    "a directory of .sql files, one .sql file, package.module:callable, "
    "package.module:Base.metadata, or alembic:path/to/alembic.ini"
)
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# outside quotes and comments: a word (``price$usd`` is one), a ``;``, or a run of anything else but space
_TOKEN = re.compile(r"(?P<word>[A-Za-z_][\w$]*)|;|[^\sA-Za-z_;]+")


@dataclass(frozen=True)
class Statement:
    """One SQL statement: its text without the trailing ``;`` and its 1-based start line."""

    sql: str
    line: int


class MigrationStep(Protocol):
    """One unit of a migration source: a ``.sql`` file or a Python callable."""

    @property
    def name(self) -> str:
        """A file path (relative to the base directory when possible) or ``pkg.mod:func``."""

    def apply(self, conn: Any, url: str | None = None) -> None:
        """Run this step on a DB-API 2 connection (sqlite3 or psycopg); does not commit."""

    def digest(self) -> bytes:
        """The content bytes that key the fingerprint."""


@dataclass(frozen=True)
class SqlFileStep:
    """A ``.sql`` file, split into statements when loaded."""

    name: str
    content: bytes
    statements: tuple[Statement, ...]

    def apply(self, conn: Any, url: str | None = None) -> None:
        """Execute each statement in order; the first failure raises MigrationError."""
        cursor = conn.cursor()
        try:
            for index, statement in enumerate(self.statements, start=1):
                try:
                    cursor.execute(statement.sql)
                except Exception as exc:
                    raise _statement_error(self.name, index, statement, exc) from exc
        finally:
            cursor.close()

    def digest(self) -> bytes:
        return self.content


@dataclass(frozen=True)
class CallableStep:
    """A Python callable taking a DB-API connection; its project's code keys the digest.

    ``source`` holds what :func:`callable_sources` read (see the module docstring).
    """

    name: str
    func: Callable[[Any], None]
    source: bytes = b""

    def apply(self, conn: Any, url: str | None = None) -> None:
        """Call the function; any exception (not KeyboardInterrupt) becomes MigrationError."""
        try:
            self.func(conn)
        except Exception as exc:
            raise MigrationError(
                f"migration failed in {self.name}: {type(exc).__name__}: {exc}\n"
                "Fix this function and run again; the template was not saved.",
                source=self.name,
            ) from exc

    def digest(self) -> bytes:
        return self.name.encode() + b"\0" + self.source


def _require_url(name: str, url: str | None) -> str:
    if not url:
        raise MigrationError(
            f"migration {name} needs a database URL to connect with, and this backend gave none",
            source=name,
        )
    return url


@dataclass(frozen=True)
class MetadataStep:
    """SQLAlchemy ``MetaData``: ``create_all`` on the template, through its URL.

    ``ddl`` holds what :func:`metadata_ddl` compiled when the step was loaded.
    """

    name: str
    metadata: Any
    ddl: bytes = b""
    needs_url = True

    def apply(self, conn: Any, url: str | None = None) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(_require_url(self.name, url), poolclass=NullPool)
        try:
            self.metadata.create_all(engine)
        except Exception as exc:
            raise MigrationError(
                f"migration failed in {self.name} (metadata.create_all): {type(exc).__name__}: {exc}\n"
                "Fix the models and run again; the template was not saved.",
                source=self.name,
            ) from exc
        finally:
            engine.dispose()

    def digest(self) -> bytes:
        return self.name.encode() + b"\0" + self.ddl

    def missing(self, url: str) -> str | None:
        """What the template lacks that ``create_all`` promised (None: every table is there)."""
        wanted = {table.name for table in self.metadata.sorted_tables}
        absent = sorted(wanted - set(_table_names(url)))
        return f"table(s) {', '.join(absent[:5])} of the metadata" if absent else None


@dataclass(frozen=True)
class AlembicStep:
    """``alembic upgrade head`` with the given alembic.ini, against the template's URL."""

    name: str
    ini_path: Path
    script_location: Path
    files: tuple[tuple[str, bytes], ...]
    needs_url = True

    def apply(self, conn: Any, url: str | None = None) -> None:
        try:
            from alembic import command
            from alembic.config import Config as AlembicConfig
        except ImportError as exc:
            raise MigrationError(f"{self.name} needs alembic: pip install alembic", source=self.name) from exc
        config = AlembicConfig(str(self.ini_path))
        config.set_main_option("script_location", str(self.script_location))
        config.set_main_option("sqlalchemy.url", _require_url(self.name, url).replace("%", "%%"))
        try:
            command.upgrade(config, "head")
        except Exception as exc:
            raise MigrationError(
                f"migration failed in {self.name} (alembic upgrade head): {type(exc).__name__}: {exc}\n"
                "Fix the revision and run again; the template was not saved.",
                source=self.name,
            ) from exc

    def missing(self, url: str) -> str | None:
        """What the template lacks that ``upgrade head`` promised (None: a head is recorded)."""
        if "alembic_version" in _table_names(url):
            return None
        return "the alembic_version table (no revision was recorded in it)"

    def digest(self) -> bytes:
        digest = hashlib.sha256()
        for name, content in self.files:
            _feed(digest, name.encode())
            _feed(digest, content)
        return digest.digest()


@dataclass(frozen=True)
class MigrationSet:
    """The loaded steps of one setting, in the order they are applied."""

    spec: str | None = None
    steps: tuple[MigrationStep, ...] = ()
    #: the setting that named this source and where its value came from, for error messages
    setting: str | None = field(default=None, compare=False)
    origin: str | None = field(default=None, compare=False)

    @property
    def fingerprint(self) -> str:
        """16 hex chars of sha256 over every step's name and digest, in order."""
        digest = hashlib.sha256()
        for step in self.steps:
            _feed(digest, step.name.encode())
            _feed(digest, step.digest())
        return digest.hexdigest()[:16]

    def apply(self, conn: Any, url: str | None = None, *, environment: Mapping[str, str] | None = None) -> None:
        """Run every step in order, then commit.

        ``url`` (a SQLAlchemy URL of the database ``conn`` is connected to) is needed by
        alembic and SQLAlchemy-metadata steps, which open their own connection.
        ``environment`` (the app's database variables, holding the address of the database
        being built) is set while the steps run and restored after: an alembic ``env.py`` or
        a callable that reads the app's settings builds this database, not another one. A
        step that promised tables (alembic recorded a head, metadata has tables) is then
        checked against the database itself.
        """
        saved: dict[str, str | None] = {}
        try:
            change_env(saved, environment or {})
            for step in self.steps:
                if getattr(step, "needs_url", False):
                    conn.commit()  # their own connection must see (and not wait for) earlier work
                step.apply(conn, url)
            conn.commit()
            for step in self.steps:
                check = getattr(step, "missing", None)
                if check is not None and url is not None:
                    lacking = check(url)
                    if lacking is not None:
                        raise MigrationError(_went_elsewhere(step.name, lacking, environment or {}), source=step.name)
        except MigrationError as exc:
            if self.setting is None or self.origin is None:
                raise
            raise _named(exc, self.setting, self.spec, self.origin) from exc.__cause__
        finally:
            restore_env(saved)


def _table_names(url: str) -> list[str]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        return list(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _went_elsewhere(name: str, lacking: str, environment: Mapping[str, str]) -> str:
    shown = ", ".join(sorted(environment)) or "no variable"
    return (
        f"migration {name} ran without error, but the template it was to build lacks {lacking}: the migration "
        "connected to another database (an alembic env.py or a callable that ignores the URL it is given and "
        f"builds its own from the app's settings?). While the template is built, {shown} hold the template's "
        "address: read the URL from there, or from the sqlalchemy.url dbscope sets; the template was not saved"
    )


# --- where in a statement it failed --------------------------------------------------------

#: SQLite's messages that name the token or the name at fault: ``near "X": syntax error``,
#: ``no such table: X``, ``table X already exists``, ``duplicate column name: X``...
_SQLITE_NEAR = re.compile(r'^near "(?P<token>.+)": syntax error$', re.DOTALL)
_SQLITE_NAMED = re.compile(
    r"^(?:no such [a-z ]+: (?P<missing>\S+)|(?:table|index|view|trigger) (?P<exists>\S+) already exists"
    r"|duplicate column name: (?P<duplicate>\S+)|unrecognized token: \"(?P<unrecognized>.+)\")$",
    re.DOTALL,
)
#: how many lines of a long statement are shown around the line of the error, and how long a line may be
_CONTEXT_LINES = 4
_LINE_LIMIT = 160


def _statement_error(name: str, index: int, statement: Statement, exc: BaseException) -> MigrationError:
    """The MigrationError for ``statement`` of file ``name`` failing with the driver's ``exc``.

    Its message names the file, the line of the error (from PostgreSQL's error position;
    for SQLite, which gives none, from the token or name its message quotes, when the
    statement shows where that is; a one-line statement's own line otherwise), the
    driver's message, and the statement with its own line breaks, line numbers and a
    ``^`` under the error.
    """
    offset = _error_offset(statement.sql, exc)
    lines = statement.sql.split("\n")
    row: int | None
    if offset is not None:
        row = statement.sql.count("\n", 0, offset)
        column: int | None = offset - (statement.sql.rfind("\n", 0, offset) + 1)
    else:
        row, column = (0, None) if len(lines) == 1 else (None, None)
    last = statement.line + len(lines) - 1
    if row is not None:
        where = f"line {statement.line + row} (statement {index})"
    else:
        where = f"statement {index} (lines {statement.line}-{last})"
    message, *detail = _driver_message(exc, positioned=offset is not None)
    text = "\n".join(
        [
            f"migration failed in {name}, {where}: {message}",
            *(f"    {line}" for line in detail),
            *_listing(lines, statement.line, row, column),
            "Fix this statement (or the ones before it) and run again; the template was not saved.",
        ]
    )
    return MigrationError(
        text,
        source=name,
        statement=statement.sql,
        statement_index=index,
        line=statement.line + (row or 0),
    )


def _error_offset(sql: str, exc: BaseException) -> int | None:
    """Where in ``sql`` the driver's error is, as an offset, or None when it cannot tell."""
    position = getattr(getattr(exc, "diag", None), "statement_position", None)  # psycopg: 1-based, in characters
    if position:
        return min(max(int(position) - 1, 0), max(len(sql) - 1, 0))
    if not isinstance(exc, sqlite3.Error):
        return None
    message = str(exc).strip()
    if message == "incomplete input":
        return len(sql) - 1
    near = _SQLITE_NEAR.match(message)
    if near is not None:
        return _syntax_error_offset(sql, near.group("token"), message)
    named = _SQLITE_NAMED.match(message)
    if named is None:
        return None
    kind = named.lastgroup
    value = named.group(kind or 0)
    spots = _occurrences(sql, value) or _occurrences(sql, value.rpartition(".")[2])  # main.users: users
    if not spots:
        return None
    return spots[-1] if kind == "duplicate" else spots[0]  # a duplicate column: its second mention


def _occurrences(sql: str, text: str) -> list[int]:
    """Offsets of ``text`` (a whole word, if it is one) outside SQLite's strings and comments."""
    if not text:
        return []
    pattern = re.escape(text)
    if re.match(r"[\w$]", text):
        pattern = r"(?<![\w$])" + pattern
    if re.search(r"[\w$]$", text):
        pattern += r"(?![\w$])"
    found = re.compile(pattern, re.IGNORECASE)
    return [
        match.start()
        for kind, lo, hi in sqlscan.scan(sql, nested_comments=False, backticks=True, brackets=True)
        if kind in (sqlscan.CODE, sqlscan.IDENTIFIER)
        for match in found.finditer(sql, lo, hi)
    ]


def _syntax_error_offset(sql: str, token: str, message: str) -> int | None:
    """Which occurrence of ``token`` SQLite's parser stopped at: the first whose prefix fails the same way.

    A prefix of the statement that ends just after an occurrence the parser accepted is
    "incomplete input" (or a statement of its own); the one it stopped at gives
    ``message`` again. The prefixes go to a private in-memory database opened read-only,
    that can attach no file (so no ``ATTACH`` or ``VACUUM INTO`` opens one) and stops a
    statement that runs long: only their parse matters.
    """
    spots = _occurrences(sql, token)
    if len(spots) <= 1:
        return spots[0] if spots else None
    probe = sqlite3.connect("file::memory:?mode=ro", uri=True)
    try:
        probe.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        probe.set_progress_handler(lambda: 1, 100_000)  # after so many steps (not at once: parsing counts too)
        for at in spots:
            try:
                probe.execute(sql[: at + len(token)])
            except sqlite3.Error as exc:
                if str(exc) == message:
                    return at
    finally:
        probe.close()
    return None


def _driver_message(exc: BaseException, *, positioned: bool) -> list[str]:
    """The driver's message, in lines; without PostgreSQL's ``LINE n:`` excerpt when the listing shows the place."""
    lines = [line.rstrip() for line in str(exc).strip().splitlines()] or [type(exc).__name__]
    if positioned:
        for i, line in enumerate(lines):
            if re.match(r"LINE \d+: ", line):
                caret = i + 1 < len(lines) and lines[i + 1].strip() == "^"
                del lines[i : i + (2 if caret else 1)]
                break
    return lines


def _listing(lines: list[str], first: int, row: int | None, column: int | None) -> list[str]:
    """The statement's lines, numbered from ``first``, a ``^`` under the error; a long statement around it."""
    if len(lines) <= 2 * _CONTEXT_LINES + 3:
        shown = range(len(lines))
    elif row is not None:
        shown = range(max(row - _CONTEXT_LINES, 0), min(row + _CONTEXT_LINES + 1, len(lines)))
    else:
        shown = range(2 * _CONTEXT_LINES + 1)
    elided = shown[0] > 0 or shown[-1] < len(lines) - 1
    width = max(len(str(first + shown[-1])), 3 if elided else 0)  # room for "..." in the margin
    out = [f"    {'...':>{width}} |"] if shown[0] > 0 else []
    for i in shown:
        text, at = _clip(lines[i], column if i == row else None)
        out.append(f"    {first + i:>{width}} | {text}".rstrip())
        if at is not None:
            under = "".join("\t" if char == "\t" else " " for char in text[:at])
            out.append(f"    {'':>{width}} | {under}^")
    if shown[-1] < len(lines) - 1:
        out.append(f"    {'...':>{width}} | ({len(lines) - 1 - shown[-1]} more lines)")
    return out


def _clip(text: str, column: int | None) -> tuple[str, int | None]:
    """A line cut to about :data:`_LINE_LIMIT` characters, keeping ``column`` in view; the column in the cut line."""
    if len(text) <= _LINE_LIMIT:
        return text, column
    start = 0 if column is None or column < _LINE_LIMIT - 20 else column - _LINE_LIMIT // 2
    prefix = "..." if start else ""
    suffix = "..." if start + _LINE_LIMIT < len(text) else ""
    return prefix + text[start : start + _LINE_LIMIT] + suffix, None if column is None else column - start + len(prefix)


def combined_fingerprint(*sets: MigrationSet) -> str:
    """One key for several sets (e.g. migrations then seed): order-sensitive, versioned."""
    digest = hashlib.sha256(f"dbscope-template-v{FORMAT_VERSION}".encode())
    for migration_set in sets:
        _feed(digest, migration_set.fingerprint.encode())
    return digest.hexdigest()[:16]


#: Words that, after END, close a compound statement of a MariaDB/MySQL trigger body, not its BEGIN.
_END_OF_BLOCK = frozenset({"IF", "LOOP", "WHILE", "REPEAT"})


def split_statements(sql: str) -> list[Statement]:
    """Split SQL text on ``;`` the way a database would read it.

    A ``;`` does not end a statement inside quotes ('', "", ``, []), comments, a
    PostgreSQL ``E'...'`` string (``\\'`` escapes the quote) or dollar-quoted body
    (``$$``, ``$tag$``, ``$é$``), or the BEGIN ... END body of a CREATE TRIGGER
    (where CASE ... END nests, and MariaDB's IF ... END IF, CASE ... END CASE, LOOP,
    WHILE and REPEAT blocks hold ``;`` too). Quotes and comments are found by :mod:`dbscope.sqlscan`,
    with SQLite's rules where the two databases differ: backticks and brackets quote, and
    a ``/* ... */`` comment ends at its first ``*/``. Comment-only pieces are dropped. A
    statement's text runs from its first to its last character that is not whitespace or
    comment (comments in between stay); its line is the line of that first character.
    """
    statements: list[Statement] = []
    start: int | None = None  # offset where the current statement's text starts
    end = 0  # offset just past its last token so far
    words: list[str] = []  # its first three words, to recognise CREATE [TEMP] TRIGGER
    depth = 0  # > 0 inside a trigger body: BEGIN and CASE open, END closes
    previous = ""  # the keyword just before, when the last token was one (END IF is not END)
    line, counted = 1, 0  # line number at offset `counted`
    for kind, lo, hi in sqlscan.scan(sql, nested_comments=False, backticks=True, brackets=True):
        if kind == sqlscan.COMMENT:
            continue
        if kind != sqlscan.CODE:  # a quoted string, identifier or body: one token
            start = lo if start is None else start
            end = hi
            continue
        for token in _TOKEN.finditer(sql, lo, hi):
            if token.group() == ";" and depth == 0:
                if start is not None:
                    line += sql.count("\n", counted, start)
                    counted = start
                    statements.append(Statement(sql[start:end], line))
                start, words = None, []
                continue
            start = token.start() if start is None else start
            end = token.end()
            if token.lastgroup == "word":
                keyword = token.group().upper()
                if len(words) < 3:
                    words.append(keyword)
                if _is_trigger(words):
                    if previous == "END" and keyword in _END_OF_BLOCK:
                        # END IF, END LOOP, END WHILE, END REPEAT (MariaDB/MySQL) closed no BEGIN
                        depth += 1
                    elif previous == "END" and keyword == "CASE":
                        pass  # END CASE closed the CASE its END counted
                    elif keyword == "BEGIN" or (keyword == "CASE" and depth > 0):
                        depth += 1
                    elif keyword == "END" and depth > 0:
                        depth -= 1
                previous = keyword
            else:
                previous = ""
    if start is not None:
        line += sql.count("\n", counted, start)
        statements.append(Statement(sql[start:end], line))
    return statements


def load_migrations(
    spec: str | os.PathLike[str] | Callable[[Any], None] | None,
    *,
    setting: str = "dbscope_migrations",
    base_dir: str | os.PathLike[str] | None = None,
    origin: str | None = None,
) -> MigrationSet:
    """Load and check a migration source; relative paths are resolved against base_dir (or cwd).

    Raises ConfigError when the value cannot be used and MigrationError when a file
    is unreadable, not UTF-8, or has no statements. With ``origin`` (where the setting's
    value came from: "the DBSCOPE_SEED environment variable") every error, also those
    of :meth:`MigrationSet.apply`, ends by naming the setting, its value and its origin.
    """
    try:
        loaded = _load(spec, setting=setting, base_dir=base_dir)
    except (ConfigError, MigrationError) as exc:
        if origin is None:
            raise
        value = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else repr(spec)
        raise _named(exc, setting, value, origin) from exc.__cause__
    return replace(loaded, setting=setting, origin=origin) if origin is not None else loaded


def _named(exc: ConfigError | MigrationError, setting: str, value: str | None, origin: str) -> Exception:
    """The same error, its message ending with the setting, its value and where it came from."""
    where = f"{setting} = {value!r}, from {origin}"
    message = f"{exc}\n({where})" if "\n" in str(exc) else f"{exc} ({where})"
    if isinstance(exc, MigrationError):
        return MigrationError(
            message, source=exc.source, statement=exc.statement, statement_index=exc.statement_index, line=exc.line
        )
    return ConfigError(message)


def _load(
    spec: str | os.PathLike[str] | Callable[[Any], None] | None,
    *,
    setting: str,
    base_dir: str | os.PathLike[str] | None,
) -> MigrationSet:
    if spec is None:
        return MigrationSet()
    if isinstance(spec, str) and not spec.strip():
        return MigrationSet(spec=spec)
    if callable(spec):
        step = _callable_step(spec)
        return MigrationSet(spec=step.name, steps=(step,))
    text = os.fspath(spec).strip()
    base = Path(base_dir if base_dir is not None else os.getcwd()).absolute()
    if text.startswith("alembic:"):
        return MigrationSet(spec=text, steps=(_alembic_step(text, base, setting),))
    path = Path(os.path.normpath(base / text))
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if _is_sql_file(p) and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if not files:
            raise ConfigError(
                f"{setting}: directory {text!r} (resolved to {path}) contains no .sql files; "
                f"add migration files such as 0001_create_users.sql (applied in name order), "
                f"or point {setting} at one .sql file or package.module:callable"
            )
        return MigrationSet(spec=text, steps=tuple(_sql_step(p, base) for p in files))
    if path.is_file():
        if not _is_sql_file(path):
            raise ConfigError(
                f"{setting}: {text!r} (resolved to {path}) is not a .sql file; point it at {_WHAT_TO_GIVE}"
            )
        return MigrationSet(spec=text, steps=(_sql_step(path, base),))
    module_name, colon, attribute = text.partition(":")
    if colon and _DOTTED.fullmatch(module_name):
        target = _import_callable(text, module_name, attribute, setting)
        if _is_metadata(target):
            return MigrationSet(spec=text, steps=(_metadata_step(target, name=text),))
        return MigrationSet(spec=text, steps=(_callable_step(target, name=text),))
    where = "" if Path(text).is_absolute() else f", relative to {base}"
    raise ConfigError(f"{setting}: {text!r} does not exist (resolved to {path}{where}); point it at {_WHAT_TO_GIVE}")


def _sql_step(path: Path, base: Path) -> SqlFileStep:
    """Read, decode and split one file; every problem is reported now, not at apply time."""
    try:
        name = path.relative_to(base).as_posix()
    except ValueError:
        name = path.as_posix()
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise MigrationError(f"cannot read migration {name}: {exc}", source=name) from exc
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise MigrationError(
            f"migration {name} is not valid UTF-8: byte {content[exc.start : exc.start + 1]!r} "
            f"at offset {exc.start} (line {line}); save the file as UTF-8 and run again",
            source=name,
            line=line,
        ) from exc
    statements = split_statements(text.removeprefix("\ufeff"))
    if not statements:
        raise MigrationError(
            f"migration {name} contains no SQL statements; delete it or add statements",
            source=name,
        )
    return SqlFileStep(name=name, content=content, statements=tuple(statements))


def _import_callable(text: str, module_name: str, attribute: str, setting: str) -> Callable[[Any], None]:
    """Resolve ``package.module:attr.path`` to a callable, with errors that say how to fix it."""
    if not _DOTTED.fullmatch(attribute):
        raise ConfigError(
            f"{setting}: {text!r} is not package.module:callable (after ':' expected a name "
            f"such as 'migrate' or 'Schema.create'); point it at {_WHAT_TO_GIVE}"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{setting}: cannot import {module_name!r} from {text!r} "
            f"({type(exc).__name__}: {exc}); make it importable (install it, or add its "
            f"directory to sys.path or pytest's pythonpath), or point {setting} at "
            f"{_WHAT_TO_GIVE}"
        ) from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(
                f"{setting}: {text!r}: {module_name!r} has no attribute {attribute!r} "
                f"(no {part!r}); define it or fix the name after ':'"
            ) from exc
    if not callable(obj) and not _is_metadata(obj):
        raise ConfigError(
            f"{setting}: {text!r} is a {type(obj).__name__}, not a callable; "
            "point it at a function that takes a DB-API connection"
        )
    return cast("Callable[[Any], None]", obj)


def _is_metadata(obj: Any) -> bool:
    """A SQLAlchemy MetaData (duck-typed: SQLAlchemy is only imported when it is used)."""
    return hasattr(obj, "create_all") and hasattr(obj, "sorted_tables")


def _metadata_step(metadata: Any, *, name: str) -> MetadataStep:
    return MetadataStep(name=name, metadata=metadata, ddl=metadata_ddl(metadata))


#: the SQLAlchemy dialects a metadata source's DDL is compiled for: dbscope's two backends
DDL_DIALECTS = ("sqlite", "postgresql")


def metadata_ddl(metadata: Any) -> bytes:
    """The DDL ``metadata.create_all`` emits, for each of :data:`DDL_DIALECTS`: it keys the digest.

    ``create_all(checkfirst=False)`` runs on a SQLAlchemy mock engine of each dialect
    (nothing connects; no driver is imported), and every statement it would send is
    compiled for that dialect: CREATE TABLE with columns, types, defaults and
    constraints, CREATE INDEX, and what the dialect adds (PostgreSQL's CREATE TYPE of an
    enum, CREATE SEQUENCE) or DDL event listeners add. The statements are sorted, since
    create_all emits a table's indexes in no fixed order. When create_all fails on the
    mock engine (a listener that needs a real connection), each table of
    ``sorted_tables`` gives its CREATE TABLE and its indexes' CREATE INDEX instead, and
    what cannot compile for a dialect gives the error's type name.
    """
    return b"".join(
        _frame(dialect_name.encode(), *(text.encode() for text in sorted(_ddl_for(metadata, dialect_name))))
        for dialect_name in DDL_DIALECTS
    )


def _ddl_for(metadata: Any, dialect_name: str) -> list[str]:
    """The DDL statements of ``metadata`` for one dialect, compiled, in no particular order."""
    import sqlalchemy
    from sqlalchemy.schema import CreateIndex, CreateTable

    statements: list[str] = []
    dialect = sqlalchemy.engine.make_url(f"{dialect_name}://").get_dialect()()

    def record(element: Any, *multiparams: Any, **params: Any) -> None:
        statements.append(str(element.compile(dialect=dialect)).strip())

    try:
        metadata.create_all(sqlalchemy.create_mock_engine(f"{dialect_name}://", record), checkfirst=False)
        return statements
    except Exception:
        statements.clear()
    for table in metadata.sorted_tables:
        elements: list[Any] = [CreateTable(table), *(CreateIndex(index) for index in table.indexes)]
        for element in elements:
            try:
                statements.append(str(element.compile(dialect=dialect)).strip())
            except Exception as exc:
                statements.append(f"{table.fullname}: {type(exc).__name__}")
    return statements


def callable_sources(module_name: str) -> bytes:
    """The project code a callable in ``module_name`` may run: it keys the digest.

    * When the module is in a package, every ``.py`` and ``.sql`` file under the
      directory of its top-level package (recursively; hidden files and directories and
      ``__pycache__`` left out), keyed by its path from that directory's parent.
    * Every project module the module imports, and the project modules those import,
      and so on, keyed by module name: imports are read from the source (``import`` and
      ``from ... import`` anywhere in the file, also inside functions), not run. A
      project module is one whose ``.py`` file is neither in the standard library nor
      in site-packages.

    A module that is itself in the standard library or site-packages (an installed
    migration package) contributes its own source only; one without a source file
    contributes nothing, so its callable's name alone keys the digest. Everything is
    sorted by key and framed with its length.
    """
    own = _module_file(module_name)
    if own is None:
        return b""
    if _installed(own):
        return _frame(module_name.encode(), own.read_bytes())
    files: dict[Path, str] = {}  # resolved path -> key
    top = module_name.partition(".")[0]
    for directory in _package_dirs(top):
        for path in _listed(directory):
            if path.suffix in (".py", ".sql"):
                files.setdefault(path.resolve(), f"{top}/{path.relative_to(directory).as_posix()}")
    pending, seen = [module_name], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        found = _module_file(name)
        if found is None or _installed(found):
            continue
        files.setdefault(found, name)
        pending.extend(_imported_names(found, name))
    entries = []
    for path, key in files.items():
        try:
            entries.append((key, path.read_bytes()))
        except OSError:
            entries.append((key, b""))  # vanished since it was listed
    return b"".join(_frame(key.encode(), content) for key, content in sorted(entries))


def _frame(*pieces: bytes) -> bytes:
    """The pieces, each after its length, so that adjacent pieces cannot run together."""
    return b"".join(len(piece).to_bytes(8, "big") + piece for piece in pieces)


def _module_file(name: str) -> Path | None:
    """The resolved ``.py`` file of module ``name``, found without importing anything."""
    module = sys.modules.get(name)
    if module is not None:
        file = getattr(module, "__file__", None)
    else:
        parent, _, _ = name.rpartition(".")
        search = _search_locations(parent) if parent else None
        if parent and not search:
            return None
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, search)
        except (ImportError, ValueError, OSError):
            return None
        file = spec.origin if spec is not None else None
    if not isinstance(file, str) or not file.endswith(".py"):
        return None
    path = Path(file).resolve()
    return path if path.is_file() else None


def _search_locations(package: str) -> list[str]:
    """Where the submodules of ``package`` are looked for (its ``__path__``), without importing it."""
    module = sys.modules.get(package)
    if module is not None:
        return list(getattr(module, "__path__", None) or [])
    parent, _, _ = package.rpartition(".")
    search = _search_locations(parent) if parent else None
    if parent and not search:
        return []
    try:
        spec = importlib.machinery.PathFinder.find_spec(package, search)
    except (ImportError, ValueError, OSError):
        return []
    return list(spec.submodule_search_locations or []) if spec is not None else []


def _package_dirs(top: str) -> list[Path]:
    """The directories of top-level package ``top`` outside the standard library and site-packages."""
    return [Path(d).resolve() for d in _search_locations(top) if Path(d).is_dir() and not _installed(Path(d))]


@functools.cache
def _installed_prefixes() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    found = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    if site.ENABLE_USER_SITE:
        found.add(site.getusersitepackages())
    return tuple(Path(p).resolve() for p in found)


def _installed(path: Path) -> bool:
    """Whether ``path`` is in the standard library or in a site-packages directory."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(prefix) for prefix in _installed_prefixes())


def _imported_names(path: Path, module_name: str) -> list[str]:
    """The modules the source of ``module_name`` (at ``path``) imports, relative ones made absolute."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if base and node.module else base or (node.module or "")
            else:
                base = node.module or ""
            if not base:
                continue
            names.append(base)  # and each imported name, in case it is a submodule
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    # a dotted import runs every package on the way: ``import a.b.c`` runs a and a.b
    return [".".join(name.split(".")[: i + 1]) for name in names for i in range(name.count(".") + 1)]


def _alembic_step(text: str, base: Path, setting: str) -> AlembicStep:
    """``alembic:path/to/alembic.ini``: the ini, env.py and the revision files key the fingerprint."""
    import configparser

    ini_text = text.removeprefix("alembic:").strip()
    ini_path = Path(os.path.normpath(base / ini_text))
    if not ini_path.is_file():
        raise ConfigError(
            f"{setting}: alembic ini {ini_text!r} does not exist (resolved to {ini_path}); "
            "give alembic:path/to/alembic.ini"
        )
    parser = configparser.ConfigParser()
    try:
        parser.read(ini_path, encoding="utf-8")
        location = parser.get("alembic", "script_location", vars={"here": str(ini_path.parent)})
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read script_location from {ini_path}: {exc}") from exc
    script_location = Path(location)
    if not script_location.is_absolute():
        script_location = ini_path.parent / script_location  # relative to the ini, not the cwd
    if not script_location.is_dir():
        raise ConfigError(
            f"{setting}: alembic script_location {location!r} of {ini_path} is not a directory "
            f"(resolved to {script_location})"
        )
    try:
        locations = _version_locations(parser, ini_path, script_location)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read version_locations from {ini_path}: {exc}") from exc
    files: dict[str, bytes] = {"alembic.ini": ini_path.read_bytes()}
    for path in _listed(script_location):
        if path.suffix in (".py", ".sql"):  # env.py, revisions, helpers; not script.py.mako or README
            files[path.relative_to(script_location).as_posix()] = path.read_bytes()
    for revisions in locations:
        for path in _listed(revisions):  # every file of a revision directory, whatever its suffix
            files.setdefault(_relative_name(path, script_location, ini_path.parent), path.read_bytes())
    return AlembicStep(
        name=text, ini_path=ini_path, script_location=script_location, files=tuple(sorted(files.items()))
    )


def _version_locations(parser: Any, ini_path: Path, script_location: Path) -> list[Path]:
    """The revision directories alembic reads: ``version_locations``, or ``<script_location>/versions``."""
    here = {"here": str(ini_path.parent)}
    value = parser.get("alembic", "version_locations", vars=here, fallback="").strip()
    if not value:
        return [script_location / "versions"]
    separator = parser.get("alembic", "path_separator", vars=here, fallback="") or parser.get(
        "alembic", "version_path_separator", vars=here, fallback=""
    )
    separators = {"os": os.pathsep, "space": " ", "newline": "\n", ":": ":", ";": ";"}
    if separator.strip() in separators:
        pieces = value.split(separators[separator.strip()])
    else:  # alembic's legacy reading: spaces and commas
        pieces = re.split(r"[\s,]+", value)
    locations = [Path(piece.strip()) for piece in pieces if piece.strip()]
    return [path if path.is_absolute() else ini_path.parent / path for path in locations]


def _listed(directory: Path) -> list[Path]:
    """The files under ``directory``, sorted, leaving out hidden ones and ``__pycache__``."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in parts):
            found.append(path)
    return found


def _relative_name(path: Path, *bases: Path) -> str:
    """``path`` relative to the first base it is under, else as it is."""
    for base in bases:
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.as_posix()


def _callable_step(func: Callable[[Any], None], *, name: str | None = None) -> CallableStep:
    """Name a callable (default ``module:qualname``); digest its project's code (:func:`callable_sources`)."""
    module_name = getattr(func, "__module__", None) or type(func).__module__
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return CallableStep(name=name or f"{module_name}:{qualname}", func=func, source=callable_sources(module_name))


def _is_sql_file(path: Path) -> bool:
    """A regular file named ``*.sql`` (any case, so ``0003.SQL`` is not silently skipped)."""
    return path.suffix.lower() == ".sql" and path.is_file()


def _is_trigger(words: list[str]) -> bool:
    """Whether a statement's first words are CREATE [TEMP|TEMPORARY] TRIGGER."""
    if words[:2] == ["CREATE", "TRIGGER"]:
        return True
    return words[0] == "CREATE" and words[1:] in (["TEMP", "TRIGGER"], ["TEMPORARY", "TRIGGER"])


def _feed(digest: Any, data: bytes) -> None:
    """Hash ``data`` with its length first, so adjacent pieces cannot run together."""
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
