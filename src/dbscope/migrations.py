"""Load migration sources, fingerprint them, and apply them to a connection.

A source (the ``dbscope_migrations`` or ``dbscope_seed`` setting) is one of:

* a directory: every ``*.sql`` file directly in it, applied in file-name order;
* one ``.sql`` file;
* ``package.module:callable`` (or the callable itself), called with a DB-API connection.

Everything is read and checked when the source is loaded, so a bad file fails before
any database is touched. The fingerprint keys the cached template: it changes when a
step's name, content or position changes, and only then.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

from .errors import ConfigError, MigrationError

__all__ = [
    "FORMAT_VERSION",
    "AlembicStep",
    "CallableStep",
    "MetadataStep",
    "MigrationSet",
    "MigrationStep",
    "SqlFileStep",
    "Statement",
    "combined_fingerprint",
    "load_migrations",
    "split_statements",
]

#: Bumped when the way templates are built changes, so old cached templates are not reused.
FORMAT_VERSION = 1

_WHAT_TO_GIVE = (
    "a directory of .sql files, one .sql file, package.module:callable, "
    "package.module:Base.metadata, or alembic:path/to/alembic.ini"
)
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_WORD = re.compile(r"[A-Za-z_][\w$]*")
# PostgreSQL's rule: a tag starts with a letter, '_' or any non-ASCII character ($é$, $_x1$)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


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
                    shown = _shorten(statement.sql)
                    raise MigrationError(
                        f"migration failed in {self.name}, statement {index} "
                        f"(line {statement.line}): {exc}\n    {shown}\n"
                        "Fix this statement (or the ones before it) and run again; "
                        "the template was not saved.",
                        source=self.name,
                        statement=statement.sql,
                        statement_index=index,
                        line=statement.line,
                    ) from exc
        finally:
            cursor.close()

    def digest(self) -> bytes:
        return self.content


@dataclass(frozen=True)
class CallableStep:
    """A Python callable taking a DB-API connection; its module's source keys the digest."""

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
    """SQLAlchemy ``MetaData``: ``create_all`` on the template, through its URL."""

    name: str
    metadata: Any
    source: bytes = b""
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
        tables = ",".join(sorted(self.metadata.tables))
        return self.name.encode() + b"\0" + tables.encode() + b"\0" + self.source


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

    def apply(self, conn: Any, url: str | None = None) -> None:
        """Run every step in order, then commit.

        ``url`` (a SQLAlchemy URL of the database ``conn`` is connected to) is needed by
        alembic and SQLAlchemy-metadata steps, which open their own connection.
        """
        try:
            for step in self.steps:
                if getattr(step, "needs_url", False):
                    conn.commit()  # their own connection must see (and not wait for) earlier work
                step.apply(conn, url)
        except MigrationError as exc:
            if self.setting is None or self.origin is None:
                raise
            raise _named(exc, self.setting, self.spec, self.origin) from exc.__cause__
        conn.commit()


def combined_fingerprint(*sets: MigrationSet) -> str:
    """One key for several sets (e.g. migrations then seed): order-sensitive, versioned."""
    digest = hashlib.sha256(f"dbscope-template-v{FORMAT_VERSION}".encode())
    for migration_set in sets:
        _feed(digest, migration_set.fingerprint.encode())
    return digest.hexdigest()[:16]


def split_statements(sql: str) -> list[Statement]:
    """Split SQL text on ``;`` the way a database would read it.

    A ``;`` does not end a statement inside quotes ('', "", ``, []), comments, a
    PostgreSQL ``E'...'`` string (``\\'`` escapes the quote) or dollar-quoted body
    (``$$``, ``$tag$``, ``$é$``), or the BEGIN ... END body of a CREATE TRIGGER
    (where CASE ... END nests). Comment-only pieces are dropped. A statement's text
    runs from its first to its last character that is not whitespace or comment
    (comments in between stay); its line is the line of that first character.
    """
    statements: list[Statement] = []
    start: int | None = None  # offset where the current statement's text starts
    end = 0  # offset just past its last token so far
    words: list[str] = []  # its first three words, to recognise CREATE [TEMP] TRIGGER
    depth = 0  # > 0 inside a trigger body: BEGIN and CASE open, END closes
    line, counted = 1, 0  # line number at offset `counted`
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            i = _after(sql, "\n", i + 2)
            continue
        if sql.startswith("/*", i):
            i = _after(sql, "*/", i + 2)
            continue
        if ch == ";" and depth == 0:
            if start is not None:
                line += sql.count("\n", counted, start)
                counted = start
                statements.append(Statement(sql[start:end], line))
            start, words = None, []
            i += 1
            continue
        if start is None:
            start = i
        if ch == "'" and i > 0 and sql[i - 1] in "eE" and not _in_word(sql, i - 1):
            i = _after_escape_string(sql, i + 1)  # PostgreSQL's E'it\'s': a backslash escapes the quote
        elif ch in "'\"`":
            i = _after(sql, ch, i + 1)  # '' and "" escapes close and reopen: same result
        elif ch == "[":
            i = _after(sql, "]", i + 1)
        elif ch == "$" and (dollar := _DOLLAR_TAG.match(sql, i)) and not _in_word(sql, i):
            i = _after(sql, dollar.group(), dollar.end())  # $$...$$ or $tag$...$tag$
        elif word := _WORD.match(sql, i):
            keyword = word.group().upper()
            if len(words) < 3:
                words.append(keyword)
            if _is_trigger(words):
                if keyword == "BEGIN" or (keyword == "CASE" and depth > 0):
                    depth += 1
                elif keyword == "END" and depth > 0:
                    depth -= 1
            i = word.end()
        else:
            i += 1
        end = i
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


def _module_source(module_name: str) -> bytes:
    module = sys.modules.get(module_name)
    try:
        filename = inspect.getsourcefile(module) if module is not None else None
        return Path(filename).read_bytes() if filename else b""
    except (TypeError, OSError):
        return b""


def _metadata_step(metadata: Any, *, name: str) -> MetadataStep:
    return MetadataStep(name=name, metadata=metadata, source=_module_source(name.partition(":")[0]))


def _alembic_step(text: str, base: Path, setting: str) -> AlembicStep:
    """``alembic:path/to/alembic.ini``: its script location's files key the fingerprint."""
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
    files = [("alembic.ini", ini_path.read_bytes())]
    for path in sorted(script_location.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".mako", ".sql") and "__pycache__" not in path.parts:
            files.append((path.relative_to(script_location).as_posix(), path.read_bytes()))
    return AlembicStep(name=text, ini_path=ini_path, script_location=script_location, files=tuple(files))


def _callable_step(func: Callable[[Any], None], *, name: str | None = None) -> CallableStep:
    """Name a callable (default ``module:qualname``); digest the source of its defining module."""
    module_name = getattr(func, "__module__", None) or type(func).__module__
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    source = b""
    module = sys.modules.get(module_name)
    try:
        filename = inspect.getsourcefile(module) if module is not None else None
        if filename:
            source = Path(filename).read_bytes()
    except (TypeError, OSError):
        pass  # built-in or generated module: the name alone keys the digest
    return CallableStep(name=name or f"{module_name}:{qualname}", func=func, source=source)


def _is_sql_file(path: Path) -> bool:
    """A regular file named ``*.sql`` (any case, so ``0003.SQL`` is not silently skipped)."""
    return path.suffix.lower() == ".sql" and path.is_file()


def _after(sql: str, closing: str, start: int) -> int:
    """Offset just past the next ``closing`` at or after ``start``, or the end of the text."""
    end = sql.find(closing, start)
    return len(sql) if end < 0 else end + len(closing)


def _after_escape_string(sql: str, start: int) -> int:
    """Offset just past the E'...' string whose body starts at ``start`` (``\\'`` does not close it)."""
    i, n = start, len(sql)
    while i < n:
        if sql[i] == "\\":
            i += 2
        elif sql[i] == "'":
            return i + 1
        else:
            i += 1
    return n


def _in_word(sql: str, i: int) -> bool:
    """Whether offset ``i`` continues a word (``price$usd``), so a ``$`` there is no quote."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


def _is_trigger(words: list[str]) -> bool:
    """Whether a statement's first words are CREATE [TEMP|TEMPORARY] TRIGGER."""
    if words[:2] == ["CREATE", "TRIGGER"]:
        return True
    return words[0] == "CREATE" and words[1:] in (["TEMP", "TRIGGER"], ["TEMPORARY", "TRIGGER"])


def _shorten(sql: str, limit: int = 200) -> str:
    """The statement on one line, cut to about ``limit`` characters for error messages."""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _feed(digest: Any, data: bytes) -> None:
    """Hash ``data`` with its length first, so adjacent pieces cannot run together."""
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
