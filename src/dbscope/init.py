"""``dbscope init``: find what a project has, and write dbscope's settings into its pytest config.

    dbscope init [--yes | --dry-run] [--metadata MODULE:ATTR | --migrations SPEC] [--seed SPEC]
                 [--env-var NAME[:FORMAT] ...] [--strategy NAME] [--url URL]

The file is the one pytest reads from the current directory (:func:`dbscope.cli.find_ini`:
pytest.toml, pytest.ini, pyproject.toml, tox.ini, setup.cfg, nearest directory first).
With none, the settings go into ``[tool.pytest.ini_options]`` of the nearest pyproject.toml
(pytest's configuration file then), or else into a new pytest.ini in the current directory.
Paths are written relative to that file's directory, where dbscope resolves them; the
project is searched from there:

* migrations: ``alembic.ini``; a directory of ``.sql`` files among ``migrations/``,
  ``db/migrations/`` and ``sql/``; or what ``--metadata`` / ``--migrations`` name;
* seed data: a ``seed.sql`` in the project's directory, ``tests/``, ``db/`` or ``sql/``;
* the environment variable the application reads its database URL from: literal names
  in ``os.environ[...]``, ``os.environ.get(...)`` and ``os.getenv(...)``, and fields of
  pydantic-settings classes, in the project's ``.py`` files (parsed, never imported),
  whose name has a database word (DATABASE, DB, SQLALCHEMY, ...) and a URL word (URL,
  URI, DSN). A variable read at import time (outside any function, or a settings class
  made at module level) gives ``dbscope_strategy = reset``: the app's engine is made
  before any test runs and keeps its first URL.

Only ``dbscope_*`` keys (and ``pythonpath``, when a module named by ``--metadata``,
``--migrations`` or ``--seed`` imports only from the project's directory) are added or
replaced; every other line stays as it is. A value already in the file is kept unless
the same setting is given on the command line. The edited text is parsed again and
compared with the original before anything is written: any other difference and nothing
is written. No pytest here.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import contextlib
import copy
import difflib
import importlib
import importlib.util
import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import EXIT_OK, EXIT_PROBLEMS, Out, find_ini
from .config import SETTINGS, build_config
from .errors import ConfigEditError, ConfigError, DbscopeError, MigrationError, UsageError
from .migrations import MetadataStep, load_migrations
from .strategies import STRATEGIES
from .urls import mask_password

__all__ = ["EnvRead", "add_parser", "cmd_init", "scan_env_reads"]

#: settings whose value is a list of items (one per line in an ini file, an array in TOML)
_LISTS = ("dbscope_env_var", "pythonpath")
#: where a directory of .sql migrations is looked for, and a seed file
_MIGRATION_DIRS = ("migrations", "db/migrations", "sql")
_SEED_FILES = ("seed.sql", "tests/seed.sql", "db/seed.sql", "sql/seed.sql")
#: a variable is taken for the database's URL when its name has a word of each set
_DB_WORDS = frozenset({"DATABASE", "DB", "SQLALCHEMY", "SQL", "SQLITE", "POSTGRES", "POSTGRESQL", "PG", "MYSQL"})
_URL_WORDS = frozenset({"URL", "URI", "DSN"})
#: calls whose argument is a driver's own address (``NAME:dsn``) or an async SQLAlchemy URL
_DSN_CALLS = frozenset(
    {
        "sqlite3.connect",
        "aiosqlite.connect",
        "psycopg.connect",
        "psycopg2.connect",
        "asyncpg.connect",
        "asyncpg.create_pool",
        "psycopg_pool.ConnectionPool",
        "psycopg_pool.AsyncConnectionPool",
        "ConnectionPool",
        "AsyncConnectionPool",
    }
)
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "build", "dist"})
_MAX_FILES = 5000
_MAX_FILE_BYTES = 1_000_000
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_NOTHING_WRITTEN = "nothing was written"


# -- what the project's Python files read from the environment ----------------------------


@dataclass(frozen=True)
class EnvRead:
    """One place a project file reads an environment variable."""

    name: str
    #: ``path:line``, the path relative to the project's directory
    where: str
    #: read while modules are imported (module level or a class body), not inside a function
    at_import: bool
    #: "async" or "dsn" when the value goes straight into a call that takes that form
    form: str | None = None
    #: when it is read, if not plainly at import or in a function ("by alembic's env.py, while migrating")
    how: str | None = None


def scan_env_reads(root: Path) -> tuple[list[EnvRead], list[str]]:
    """Every literal environment variable read in the ``.py`` files under ``root``, and notes.

    Files are parsed, never imported. Virtual environments, hidden directories,
    ``node_modules``, ``site-packages``, ``build`` and ``dist`` are skipped; an alembic
    ``env.py`` (next to a ``versions/`` directory) runs while migrating, not at import.
    """
    reads: list[EnvRead] = []
    classes: list[tuple[str, list[EnvRead]]] = []  # pydantic settings classes and their fields
    made_at_import: dict[str, str] = {}  # class name -> where it is instantiated at module level
    notes: list[str] = []
    unparsed: list[str] = []
    files = _python_files(root)
    if len(files) > _MAX_FILES:
        notes.append(f"read the first {_MAX_FILES} .py files only; the rest of the project was not searched")
        files = files[:_MAX_FILES]
    for path in files:
        relative = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=relative)
        except (OSError, SyntaxError, ValueError):
            unparsed.append(relative)
            continue
        migrating = path.name == "env.py" and (path.parent / "versions").is_dir()
        visitor = _Reads(relative, migrating=migrating)
        visitor.visit(tree)
        reads += visitor.reads
        classes += visitor.settings_classes
        for name, where in visitor.module_calls.items():
            made_at_import.setdefault(name, where)
    for class_name, fields in classes:
        made = made_at_import.get(class_name)
        how = f"by the pydantic settings class {class_name}, " + (
            f"made at import time in {made}" if made else "when it is made"
        )
        reads += [EnvRead(f.name, f.where, at_import=made is not None, how=how) for f in fields]
    if unparsed:
        notes.append(f"could not parse {len(unparsed)} .py file(s): {', '.join(unparsed[:3])}")
    return reads, notes


def _python_files(root: Path) -> list[Path]:
    """The ``.py`` files under ``root``, in a stable order; one more than :data:`_MAX_FILES` at most."""
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        if len(found) > _MAX_FILES:
            break
        here = Path(directory)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not (here / d / "conda-meta").is_dir()
        )
        for name in sorted(filenames):
            path = here / name
            if name.endswith(".py") and path.is_file() and path.stat().st_size <= _MAX_FILE_BYTES:
                found.append(path)
    return found


class _Reads(ast.NodeVisitor):
    """The environment reads of one module, whether each runs at import, and its settings classes."""

    def __init__(self, path: str, *, migrating: bool) -> None:
        self.path = path
        self.migrating = migrating
        self.reads: list[EnvRead] = []
        self.settings_classes: list[tuple[str, list[EnvRead]]] = []
        self.module_calls: dict[str, str] = {}  # a name called at module level -> where
        self.functions = 0  # how many function bodies we are inside
        self.calls: list[str] = []  # the enclosing calls, innermost last
        self.os_names = {"os"}
        self.environ_names: set[str] = set()
        self.getenv_names: set[str] = set()

    # imports: which names stand for os, os.environ and os.getenv here
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "os":
                self.os_names.add(alias.asname or "os")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "os":
            for alias in node.names:
                if alias.name == "environ":
                    self.environ_names.add(alias.asname or alias.name)
                elif alias.name == "getenv":
                    self.getenv_names.add(alias.asname or alias.name)

    # scopes: code inside a function (or under `if __name__ == "__main__"`) does not run at import
    def _in_function(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _in_function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        main = (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
        )
        if not main:
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.functions += 1
        for statement in node.body:
            self.visit(statement)
        self.functions -= 1
        for statement in node.orelse:
            self.visit(statement)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(_last_name(base) == "BaseSettings" for base in node.bases):
            self.settings_classes.append((node.name, _settings_fields(node, self.path)))
        self.generic_visit(node)

    # the reads themselves
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        getenv = (isinstance(func, ast.Name) and func.id in self.getenv_names) or (
            isinstance(func, ast.Attribute) and func.attr == "getenv" and self._is_os(func.value)
        )
        environ_get = isinstance(func, ast.Attribute) and func.attr == "get" and self._is_environ(func.value)
        if (getenv or environ_get) and node.args:
            self._read(node.args[0], node)
        callee = _dotted(func)
        if self.functions == 0 and callee:
            self.module_calls.setdefault(callee.rpartition(".")[2], f"{self.path}:{node.lineno}")
        self.calls.append(callee)
        self.generic_visit(node)
        self.calls.pop()

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load) and self._is_environ(node.value):
            self._read(node.slice, node)
        self.generic_visit(node)

    def _is_os(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in self.os_names

    def _is_environ(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.environ_names
        return isinstance(node, ast.Attribute) and node.attr == "environ" and self._is_os(node.value)

    def _read(self, key: ast.expr, node: ast.expr) -> None:
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return
        form = None
        for callee in reversed(self.calls):
            if callee.rpartition(".")[2] == "create_async_engine":
                form = "async"
            elif callee in _DSN_CALLS:
                form = "dsn"
            if form or callee.rpartition(".")[2] in ("create_engine", "make_url"):
                break
        at_import = self.functions == 0 and not self.migrating
        how = "by alembic's env.py, while migrating" if self.migrating else None
        self.reads.append(EnvRead(key.value, f"{self.path}:{node.lineno}", at_import, form, how))


def _last_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else node.attr
    return ""


def _settings_fields(node: ast.ClassDef, path: str) -> list[EnvRead]:
    """The variables a pydantic-settings class reads: its annotated fields, with a literal ``env_prefix``."""
    prefix = ""
    for statement in node.body:
        if isinstance(statement, ast.Assign) and any(_last_name(t) == "model_config" for t in statement.targets):
            prefix = _literal_keyword(statement.value, "env_prefix") or prefix
        if isinstance(statement, ast.ClassDef) and statement.name == "Config":
            for inner in statement.body:
                if isinstance(inner, ast.Assign) and any(_last_name(t) == "env_prefix" for t in inner.targets):
                    if isinstance(inner.value, ast.Constant) and isinstance(inner.value.value, str):
                        prefix = inner.value.value
    fields = []
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            if name == "model_config" or name.startswith("_"):
                continue
            alias = _literal_keyword(statement.value, "validation_alias", "alias", "env") if statement.value else None
            fields.append(EnvRead((alias or prefix + name).upper(), f"{path}:{statement.lineno}", at_import=False))
    return fields


def _literal_keyword(node: ast.expr, *names: str) -> str | None:
    """A literal string given as one of ``names`` to a call (``SettingsConfigDict(env_prefix="APP_")``) or a dict."""
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if (
                keyword.arg in names
                and isinstance(keyword.value, ast.Constant)
                and isinstance(keyword.value.value, str)
            ):
                return keyword.value.value
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in names:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value
    return None


def _name_kind(name: str) -> str | None:
    """What a name says: "url" a database URL (DATABASE_URL), "other" a database or a URL (DB_HOST, REDIS_URL)."""
    upper = name.upper()
    if upper.startswith(("DBSCOPE_", "PYTEST_")):
        return None
    words = set(re.split(r"[^A-Z0-9]+", upper))
    if words & _DB_WORDS and words & _URL_WORDS:
        return "url"
    return "other" if words & (_DB_WORDS | _URL_WORDS) else None


@dataclass(frozen=True)
class _Variable:
    """Every read of one variable."""

    name: str
    reads: tuple[EnvRead, ...]

    @property
    def at_import(self) -> EnvRead | None:
        return next((r for r in self.reads if r.at_import), None)

    @property
    def spec(self) -> str:
        """``NAME`` or ``NAME:async`` / ``NAME:dsn``, from how the value is used (or ASYNC in its name)."""
        form = next((r.form for r in self.reads if r.form), None)
        if form is None and "ASYNC" in re.split(r"[^A-Z0-9]+", self.name.upper()):
            form = "async"
        return f"{self.name}:{form}" if form else self.name

    def describe(self) -> str:
        first = self.at_import or self.reads[0]
        when = first.how or ("at import time" if first.at_import else "inside a function")
        more = f" and {len(self.reads) - 1} more place(s)" if len(self.reads) > 1 else ""
        return f"{self.name}, read {when} ({first.where}{more})"


def _variables(reads: Sequence[EnvRead], kind: str) -> list[_Variable]:
    names: dict[str, list[EnvRead]] = {}
    for read in reads:
        if _name_kind(read.name) == kind:
            names.setdefault(read.name, []).append(read)
    return [_Variable(name, tuple(found)) for name, found in sorted(names.items())]


# -- the pytest configuration file ---------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """The file the settings go into: an ini section or a TOML table, existing or not."""

    path: Path
    #: the ini section (``pytest``, ``tool:pytest``) or the TOML table's key path
    table: tuple[str, ...]
    toml: bool
    exists: bool
    #: whether that section or table is there already
    has_table: bool = False
    #: its current pytest settings
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shown_table(self) -> str:
        return f"[{'.'.join(self.table)}]"


def choose_config(cwd: Path) -> ConfigFile:
    """The file pytest reads from ``cwd``; else the nearest pyproject.toml; else a new ``cwd/pytest.ini``."""
    try:
        path, values = find_ini(cwd)
    except UsageError as exc:
        raise UsageError(f"{exc}; pytest cannot read it either: fix it and run dbscope init again") from None
    if path is None:
        return ConfigFile(cwd / "pytest.ini", ("pytest",), toml=False, exists=False)
    if path.suffix == ".toml":  # find_ini has parsed it already
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        if path.name != "pyproject.toml":
            return ConfigFile(path, ("pytest",), toml=True, exists=True, has_table="pytest" in document, values=values)
        tool = document.get("tool", {}).get("pytest", {})
        native = any(key != "ini_options" for key in tool)  # pytest 9's [tool.pytest], with TOML types
        table = ("tool", "pytest") if native else ("tool", "pytest", "ini_options")
        return ConfigFile(path, table, toml=True, exists=True, has_table=bool(tool), values=values)
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return ConfigFile(path, (section,), toml=False, exists=True, has_table=parser.has_section(section), values=values)


def _items_of(key: str, raw: Any) -> tuple[str, ...]:
    """A setting's value as the items init compares: one for a plain setting, each item for a list."""
    if key not in _LISTS:
        return (str(raw).strip(),)
    lines = [str(item) for item in raw] if isinstance(raw, (list, tuple)) else [str(raw)]
    if key == "pythonpath":
        return tuple(part for line in lines for part in shlex.split(line))
    return tuple(part for line in lines for part in re.split(r"[,\s]+", line) if part)


def _ini_line(key: str, items: tuple[str, ...], newline: str) -> str:
    if key in _LISTS and len(items) > 1:
        return f"{key} =" + "".join(f"{newline}    {item}" for item in items) + newline
    return f"{key} = {items[0]}{newline}"


def _toml_line(key: str, items: tuple[str, ...], newline: str, comment: str = "") -> str:
    value = "[" + ", ".join(map(_toml_string, items)) + "]" if key in _LISTS else _toml_string(items[0])
    return f"{key} = {value}{'  ' + comment if comment else ''}{newline}"


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def edit_text(config: ConfigFile, text: str, changes: Mapping[str, tuple[str, ...]]) -> str:
    """``text`` with each of ``changes`` added to (or replaced in) the config's section or table."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    if config.toml:
        return "".join(_edit_toml(lines, config.table, changes, newline))
    return "".join(_edit_ini(lines, config.table[0], changes, newline))


def _edit_ini(lines: list[str], section: str, changes: Mapping[str, tuple[str, ...]], newline: str) -> list[str]:
    header = re.compile(r"\[(?P<name>.+)\]")
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if line[:1] == "[" and (m := header.match(line.strip())) and m["name"] == section
        ),
        None,
    )
    if start is None:  # a pytest.ini without its [pytest] section: add one at the end
        gap = [newline] if lines and lines[-1].strip() else []
        return lines + gap + [f"[{section}]{newline}"] + [_ini_line(k, v, newline) for k, v in changes.items()]
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i][:1] == "[" and header.match(lines[i].strip())), len(lines)
    )
    keys: dict[str, tuple[int, int]] = {}  # key -> its lines [first, last)
    i = start + 1
    while i < end:
        line = lines[i]
        if line.strip() and line[:1] not in (" ", "\t") and not line.lstrip().startswith(("#", ";")):
            key = re.split(r"[=:]", line, maxsplit=1)[0].strip().lower()
            last = i + 1
            j = i + 1
            while j < end:  # its continuation lines, and blank or comment lines followed by one
                if lines[j].strip() and lines[j][:1] in (" ", "\t") and not lines[j].lstrip().startswith(("#", ";")):
                    last = j = j + 1
                elif not lines[j].strip() or lines[j].lstrip().startswith(("#", ";")):
                    j += 1
                else:
                    break
            keys[key] = (i, last)
            i = last
        else:
            i += 1
    insert_at = max((span[1] for span in keys.values()), default=start + 1)
    added = [_ini_line(k, v, newline) for k, v in changes.items() if k not in keys]
    result = lines[:insert_at] + added + lines[insert_at:]
    for key, (first, last) in sorted(((k, keys[k]) for k in changes if k in keys), key=lambda kv: -kv[1][0]):
        offset = len(added) if first >= insert_at else 0
        result[first + offset : last + offset] = [_ini_line(key, changes[key], newline)]
    return result


@dataclass(frozen=True)
class _Statement:
    """One TOML statement: a table header or a key-value, over lines [first, last]."""

    first: int
    last: int
    header: tuple[str, ...] | None = None
    array: bool = False
    key: tuple[str, ...] | None = None
    comment: str = ""


def _toml_statements(lines: list[str]) -> list[_Statement]:
    statements: list[_Statement] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if stripped.startswith("["):
            match = re.match(r"(\[\[?)\s*(.*?)\s*\]\]?\s*(#.*)?$", stripped)
            name = _key_path(match[2]) if match else ()
            statements.append(_Statement(i, i, header=name, array=bool(match and match[1] == "[[")))
            i += 1
            continue
        equals = _outside_quotes(lines[i], "=")
        if equals < 0:
            raise ConfigEditError(f"line {i + 1} is neither a table header nor a key = value")
        last, comment = _value_end(lines, i, equals + 1)
        statements.append(_Statement(i, last, key=_key_path(lines[i][:equals]), comment=comment))
        i = last + 1
    return statements


def _key_path(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text.strip())
    return tuple(part.strip().strip("\"'") for part in parts if part.strip())


def _outside_quotes(line: str, wanted: str) -> int:
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == wanted:
            return index
    return -1


def _value_end(lines: list[str], i: int, pos: int) -> tuple[int, str]:
    """The last line of the value starting at ``lines[i][pos:]`` (strings and brackets may span lines), its comment."""
    depth, quote = 0, ""
    while True:
        line, k, comment = lines[i], pos, ""
        while k < len(line):
            char = line[k]
            if quote in ('"""', "'''"):
                if line.startswith(quote, k):
                    quote, k = "", k + 3
                else:
                    k += 2 if quote == '"""' and char == "\\" else 1
            elif quote:
                if quote == '"' and char == "\\":
                    k += 2
                    continue
                quote = "" if char == quote else quote
                k += 1
            elif char == "#":
                comment = line[k:].rstrip("\r\n")
                break
            elif line.startswith(('"""', "'''"), k):
                quote, k = line[k : k + 3], k + 3
            else:
                quote = char if char in "\"'" else ""
                depth += (char in "[{") - (char in "]}")
                k += 1
        if quote not in ('"""', "'''") and depth <= 0:
            return i, comment
        if i + 1 >= len(lines):
            raise ConfigEditError(f"the value that starts on line {i + 1} does not end")
        i, pos = i + 1, 0


def _edit_toml(
    lines: list[str], table: tuple[str, ...], changes: Mapping[str, tuple[str, ...]], newline: str
) -> list[str]:
    statements = _toml_statements(lines)
    start = next((n for n, s in enumerate(statements) if s.header == table and not s.array), None)
    if start is None:
        if _has_table(lines, table):
            raise ConfigEditError(f"its [{'.'.join(table)}] table is not written as a [{'.'.join(table)}] header")
        gap = [newline] if lines and lines[-1].strip() else []
        return lines + gap + [f"[{'.'.join(table)}]{newline}"] + [_toml_line(k, v, newline) for k, v in changes.items()]
    body = []
    for statement in statements[start + 1 :]:
        if statement.header is not None:
            break
        body.append(statement)
    keys = {s.key[0]: s for s in body if s.key and len(s.key) == 1}
    insert_at = max((s.last + 1 for s in body), default=statements[start].first + 1)
    added = [_toml_line(k, v, newline) for k, v in changes.items() if k not in keys]
    result = lines[:insert_at] + added + lines[insert_at:]
    for key in sorted((k for k in changes if k in keys), key=lambda k: -keys[k].first):
        old = keys[key]
        offset = len(added) if old.first >= insert_at else 0
        comment = old.comment if old.first == old.last else ""
        result[old.first + offset : old.last + offset + 1] = [_toml_line(key, changes[key], newline, comment)]
    return result


def _has_table(lines: list[str], table: tuple[str, ...]) -> bool:
    node: Any = tomllib.loads("".join(lines))
    for part in table:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _check_edit(config: ConfigFile, old: str, new: str, changes: Mapping[str, tuple[str, ...]]) -> None:
    """Parse both texts: the new one must be the old one with ``changes`` made, and nothing else."""
    if config.toml:
        expected: dict[str, Any] = copy.deepcopy(tomllib.loads(old)) if old else {}
        node = expected
        for part in config.table:
            node = node.setdefault(part, {})
        for key, items in changes.items():
            node[key] = list(items) if key in _LISTS else items[0]
        try:
            got = tomllib.loads(new)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigEditError(f"the edited file would not parse ({exc})") from None
        if got != expected:
            raise ConfigEditError("the edited file would differ in more than these settings")
        return
    before, after = _ini_sections(old), _ini_sections(new)
    section = config.table[0]
    before.setdefault(section, {}).update(changes)
    if section in after:
        after[section] = {k: _items_of(k, v) if k in changes else v for k, v in after[section].items()}
    if after != before:
        raise ConfigEditError("the edited file would differ in more than these settings")


def _ini_sections(text: str) -> dict[str, dict[str, Any]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ConfigEditError(f"the edited file would not parse ({exc})") from None
    return {
        section: {key: parser.get(section, key) for key in parser.options(section)} for section in parser.sections()
    }


# -- deciding what to write ----------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A setting init would write: its key, its value's items, why, and whether the user gave it."""

    key: str
    items: tuple[str, ...]
    why: str
    given: bool = False

    @property
    def shown(self) -> str:
        return mask_password(f"{self.key} = {', '.join(self.items)}")


@dataclass
class _Plan:
    """What init found, would write, and keeps, in the order it is printed."""

    root: Path
    config: ConfigFile
    cwd: Path
    proposals: list[Proposal] = field(default_factory=list)
    #: pytest pythonpath entries a module source imports from (``dbscope doctor`` needs them in PYTHONPATH)
    import_path: list[str] = field(default_factory=list)
    lines: list[tuple[str, str, str | None]] = field(default_factory=list)  # (label, text, colour)

    def say(self, label: str, text: str, colour: str | None = None) -> None:
        self.lines.append((label, text, colour))

    def existing(self, key: str) -> tuple[str, ...] | None:
        raw = self.config.values.get(key)
        return None if raw is None or raw == "" or raw == [] else _items_of(key, raw)

    def propose(self, proposal: Proposal, what: str) -> None:
        """Write ``proposal`` unless the file has the setting already: then only a given one replaces it."""
        current = self.existing(proposal.key)
        where = self.shown(self.config.path)
        if current == proposal.items:
            self.say("same", f"{what}: {proposal.shown} is already in {where}")
        elif current is None or proposal.given:
            self.proposals.append(proposal)
            self.say("given" if proposal.given else "found", f"{what}: {proposal.why} -> {proposal.shown}", "green")
        else:
            kept = mask_password(f"{proposal.key} = {', '.join(current)}")
            option = "--" + proposal.key.removeprefix("dbscope_").replace("_", "-")
            flags = " ".join(f"{option} {item}" for item in proposal.items)
            self.say(
                "kept", f"{what}: {kept} in {where} stays; found {proposal.why} (to replace it: {flags})", "yellow"
            )

    def shown(self, path: Path) -> str:
        """A path as the user reads it: relative to the current directory when under it or just above it."""
        if path.is_relative_to(self.cwd) or self.cwd.is_relative_to(path.parent):
            return Path(os.path.relpath(path, self.cwd)).as_posix()
        return str(path)

    def rel(self, path: Path) -> str:
        """A path as a setting's value: relative to the config file's directory, where dbscope resolves it."""
        return Path(os.path.relpath(path, self.root)).as_posix()


def _plan(args: argparse.Namespace, cwd: Path) -> _Plan:
    config = choose_config(cwd)
    root = config.path.parent if config.exists else cwd
    plan = _Plan(root=root, config=config, cwd=cwd)
    where = plan.shown(config.path)
    if config.has_table:
        plan.say("config", f"{where} {config.shown_table}: the file pytest reads here")
    elif config.exists:
        plan.say(
            "config", f"{where}: pytest's config file here, with no pytest settings yet: a new {config.shown_table}"
        )
    else:
        plan.say("config", f"{where}: no pytest config file here or above, and no pyproject.toml: a new {where}")
    _plan_migrations(plan, args)
    _plan_seed(plan, args)
    _plan_env(plan, args)
    if args.url is not None:
        plan.propose(Proposal("dbscope_url", (args.url.strip(),), f"--url {args.url.strip()}", given=True), "url")
    for setting in SETTINGS:
        if os.environ.get(setting.env_name):
            plan.say("note", f"{setting.env_name} is set in this shell: it overrides {setting.ini_name} in any file")
    return plan


def _plan_migrations(plan: _Plan, args: argparse.Namespace) -> None:
    if args.metadata is not None:
        given = args.metadata.strip()
        spec = _metadata_spec(plan, given)
        plan.propose(Proposal("dbscope_migrations", (spec,), f"--metadata {given}", given=True), "migrations")
        return
    if args.migrations is not None:
        given = args.migrations.strip()
        spec = _given_source(plan, given, "--migrations")
        plan.propose(Proposal("dbscope_migrations", (spec,), f"--migrations {given}", given=True), "migrations")
        return
    found: list[tuple[str, str]] = []
    if (plan.root / "alembic.ini").is_file():
        found.append(("alembic:alembic.ini", "alembic.ini"))
    for name in _MIGRATION_DIRS:
        sql = [p for p in _sql_files(plan.root / name) if p.name != "seed.sql"]
        if sql:
            found.append((name, f"{name}/, {len(sql)} .sql file(s)"))
    existing = plan.existing("dbscope_migrations")
    if existing is not None:  # the file's value stays; say what was found instead, if anything
        spec, why = next((f for f in found if (f[0],) == existing), found[0] if found else (existing[0], "it"))
        plan.propose(Proposal("dbscope_migrations", (spec,), why), "migrations")
        return
    if not found:
        plan.say(
            "none",
            "migrations: no alembic.ini, no .sql files in migrations/, db/migrations/ or sql/: every test gets an "
            "empty database (pass --metadata module:Base.metadata or --migrations SPEC)",
            "yellow",
        )
        return
    if len(found) > 1:
        raise UsageError(
            "found more than one migration source: "
            + "; ".join(f"{why} (--migrations {spec})" for spec, why in found)
            + f"; pass the one the tests should build with --migrations SPEC; {_NOTHING_WRITTEN}"
        )
    [(spec, why)] = found
    _load_checked(plan, spec, "dbscope_migrations")
    plan.propose(Proposal("dbscope_migrations", (spec,), why), "migrations")
    if spec.startswith("alembic:") and importlib.util.find_spec("alembic") is None:
        plan.say("note", "alembic is not installed here: pip install 'dbscope[alembic]' (or alembic) before pytest")


def _sql_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix.lower() == ".sql" and p.is_file() and not p.name.startswith(".")
    )


def _plan_seed(plan: _Plan, args: argparse.Namespace) -> None:
    if args.seed is not None:
        spec = _given_source(plan, args.seed, "--seed")
        plan.propose(Proposal("dbscope_seed", (spec,), f"--seed {args.seed.strip()}", given=True), "seed data")
        return
    migrations = next((p.items[0] for p in plan.proposals if p.key == "dbscope_migrations"), None)
    migrations = migrations or (plan.existing("dbscope_migrations") or (None,))[0]
    found = [
        name
        for name in _SEED_FILES
        if (plan.root / name).is_file() and (migrations is None or Path(name).parent != Path(migrations))
    ]
    if len(found) > 1:
        if plan.existing("dbscope_seed") is None:
            raise UsageError(
                f"found more than one seed file: {', '.join(found)}; pass the one the tests should start with "
                f"with --seed PATH; {_NOTHING_WRITTEN}"
            )
        found = [f for f in found if (f,) == plan.existing("dbscope_seed")][:1] or found[:1]
    if found:
        _load_checked(plan, found[0], "dbscope_seed")
        plan.propose(Proposal("dbscope_seed", (found[0],), found[0]), "seed data")


def _given_source(plan: _Plan, raw: str, option: str) -> str:
    """A --migrations/--seed value: a path the user typed is relative to the current directory; rebase it."""
    text = raw.strip()
    path_text, prefix = (
        (text.removeprefix("alembic:").strip(), "alembic:") if text.startswith("alembic:") else (text, "")
    )
    if path_text and (plan.cwd / path_text).exists():
        absolute = Path(os.path.normpath(plan.cwd / path_text))
        text = prefix + (path_text if Path(path_text).is_absolute() else plan.rel(absolute))
    module, colon, _ = text.partition(":")
    if colon and not prefix and _DOTTED.fullmatch(module):
        with _importable(plan, module.partition(".")[0], option):
            _load_checked(plan, text, option)
    else:
        _load_checked(plan, text, option)
    return text


def _load_checked(plan: _Plan, spec: str, setting: str) -> Any:
    try:
        return load_migrations(spec, setting=setting, base_dir=plan.root)
    except (ConfigError, MigrationError) as exc:
        raise UsageError(f"{exc}; {_NOTHING_WRITTEN}") from None


def _metadata_spec(plan: _Plan, spec: str) -> str:
    """``--metadata``: import it as pytest will; a declarative base stands for its ``.metadata``."""
    module, colon, attribute = spec.partition(":")
    if not (colon and _DOTTED.fullmatch(module) and _DOTTED.fullmatch(attribute)):
        raise UsageError(
            f"--metadata {spec!r} is not module:attribute; give the MetaData the tables are declared on, "
            f"e.g. --metadata app.models:Base.metadata; {_NOTHING_WRITTEN}"
        )
    with _importable(plan, module.partition(".")[0], "--metadata"):
        try:
            target: Any = importlib.import_module(module)
        except Exception as exc:
            raise UsageError(
                f"--metadata {spec!r}: cannot import {module!r} ({type(exc).__name__}: {exc}); check the name, "
                f"and that the module imports without the app's services running; {_NOTHING_WRITTEN}"
            ) from None
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise UsageError(
                    f"--metadata {spec!r}: {module!r} has no attribute {attribute!r} (no {part!r}); "
                    f"give the MetaData, e.g. {module}:Base.metadata; {_NOTHING_WRITTEN}"
                )
            target = getattr(target, part)
        if not _is_metadata(target):
            if not _is_metadata(getattr(target, "metadata", None)):
                raise UsageError(
                    f"--metadata {spec!r} is of type {type(target).__name__}, not a SQLAlchemy MetaData; give the "
                    f"MetaData (e.g. {module}:Base.metadata), or a function that migrates a connection with "
                    "--migrations; "
                    f"{_NOTHING_WRITTEN}"
                )
            plan.say("note", f"{spec} is a declarative base: its metadata is {spec}.metadata")
            spec = f"{spec}.metadata"
        loaded = _load_checked(plan, spec, "--metadata")
    if not isinstance(loaded.steps[0], MetadataStep):  # pragma: no cover - _is_metadata said it is
        raise UsageError(f"--metadata {spec!r} is not a SQLAlchemy MetaData; {_NOTHING_WRITTEN}")
    return spec


def _is_metadata(obj: Any) -> bool:
    return hasattr(obj, "create_all") and hasattr(obj, "sorted_tables")


@contextlib.contextmanager
def _importable(plan: _Plan, top: str, option: str) -> Iterator[None]:
    """Put on sys.path what pytest will have there: its ``pythonpath``, and the project's directory if it must be.

    A package that imports only from the project's directory (``app/`` next to pytest.ini,
    or ``src/app``, not installed) gets ``pythonpath = .`` (or ``src``): the ``pytest``
    command does not put the current directory on sys.path, and dbscope imports the
    module before any conftest is imported.
    """
    configured = plan.existing("pythonpath") or ()
    saved = list(sys.path)
    elsewhere = [p for p in saved if p not in ("", os.getcwd(), str(plan.cwd), str(plan.root))]

    def findable(entries: Sequence[str]) -> bool:
        sys.path[:] = [str(plan.root / entry) for entry in entries] + elsewhere
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            return False
        finally:
            sys.path[:] = saved

    needed: Sequence[str] = ()  # the pythonpath entries it imports from
    if not findable(()):
        home = next(
            (d for d in (plan.root, plan.root / "src") if (d / top).is_dir() or (d / f"{top}.py").is_file()), None
        )
        if configured and findable(configured):
            needed = configured
        elif home is not None and configured:
            raise UsageError(
                f"{option}: {top!r} is in {home}, which is not on pytest's pythonpath ({' '.join(configured)} in "
                f"{plan.shown(plan.config.path)}): add {plan.rel(home)} to it, then run dbscope init again; "
                f"{_NOTHING_WRITTEN}"
            )
        elif home is not None:
            needed = (plan.rel(home),)
            why = f"{top} is in {needed[0]}/ and not installed: pytest imports it from there only with pythonpath"
            plan.propose(Proposal("pythonpath", needed, why), "import path")
    plan.import_path += [entry for entry in needed if entry not in plan.import_path]
    sys.path[:0] = [str(plan.root / entry) for entry in (*configured, *needed)]
    try:
        yield
    finally:
        sys.path[:] = saved


def _plan_env(plan: _Plan, args: argparse.Namespace) -> None:
    reads, notes = scan_env_reads(plan.root)
    for note in notes:
        plan.say("note", note)
    candidates = _variables(reads, "url")
    chosen: list[str]
    if args.env_var:
        chosen = [item.strip() for value in args.env_var for item in value.split(",") if item.strip()]
        why = "--env-var " + " --env-var ".join(chosen)
        plan.propose(Proposal("dbscope_env_var", tuple(chosen), why, given=True), "database URL")
    elif plan.existing("dbscope_env_var") is not None:  # the file's value stays
        chosen = list(plan.existing("dbscope_env_var") or ())
        if len(candidates) == 1:
            plan.propose(Proposal("dbscope_env_var", (candidates[0].spec,), candidates[0].describe()), "database URL")
        else:
            where = plan.shown(plan.config.path)
            plan.say("kept", f"database URL: dbscope_env_var = {', '.join(chosen)} in {where} stays")
    elif len(candidates) > 1:
        lines = "; ".join(v.describe() for v in candidates)
        flags = " ".join(f"--env-var {v.spec}" for v in candidates)
        raise UsageError(
            f"the project reads more than one variable named like a database URL: {lines}. Pass the ones the app "
            f"reads its database's address from (all of them: {flags}); {_NOTHING_WRITTEN}"
        )
    elif candidates:
        variable = candidates[0]
        chosen = [variable.spec]
        plan.propose(Proposal("dbscope_env_var", (variable.spec,), variable.describe()), "database URL")
    else:
        chosen = []
        plan.say(
            "none",
            "database URL: no os.environ / os.getenv read or settings field named like one (DATABASE_URL, DB_URI, "
            "...); dbscope sets DATABASE_URL (pass --env-var NAME if the app reads another)",
        )
    others = [v.describe() for v in _variables(reads, "other")]
    if others:
        plan.say(
            "note",
            f"also read, not taken for a database URL: {'; '.join(others[:4])}"
            + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            + " (--env-var NAME[:FORMAT] if one is; NAME:host, NAME:port, ... for the parts of a server's address)",
        )
    if args.strategy is not None:
        plan.propose(
            Proposal("dbscope_strategy", (args.strategy,), f"--strategy {args.strategy}", given=True), "strategy"
        )
        return
    names = {item.partition(":")[0] for item in chosen}
    early = next(
        (v.at_import for v in _variables(reads, "url") + _variables(reads, "other") if v.name in names and v.at_import),
        None,
    )
    current = (plan.existing("dbscope_strategy") or ("clone",))[0].lower()
    if early is not None and current != "reset" and getattr(STRATEGIES.get(current), "fixed_url", False):
        plan.say(
            "same",
            f"strategy: dbscope_strategy = {current} in {plan.shown(plan.config.path)} gives each worker one "
            f"database with a fixed URL, as {early.name} read at import time ({early.where}) needs",
        )
    elif early is not None:
        why = (
            f"{early.name} is read at import time ({early.where}): the app's engine keeps that first URL, so each "
            "worker gets one database with a fixed URL, restored after every test"
        )
        plan.propose(Proposal("dbscope_strategy", ("reset",), why), "strategy")


# -- the command -------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Register ``dbscope init`` on the ``dbscope`` command's subparsers."""
    init = commands.add_parser(
        "init",
        help="write dbscope's settings into the project's pytest config, after showing the diff",
        description="Find the project's migrations (alembic.ini, a directory of .sql files, or the SQLAlchemy "
        "MetaData you name), its seed file and the environment variable its app reads the database URL from; "
        "show the diff of the pytest config file (the one pytest reads here; else pyproject.toml's "
        "[tool.pytest.ini_options]; else a new pytest.ini) and ask before writing it. Settings already in the file "
        "are kept unless given here. Exit status: 0 written (or nothing to change), 1 nothing written (not "
        "confirmed), 2 bad input.",
    )
    mode = init.add_mutually_exclusive_group()
    mode.add_argument("--yes", "-y", action="store_true", help="write without asking (for scripts)")
    mode.add_argument("--dry-run", action="store_true", help="show the diff; write nothing")
    source = init.add_mutually_exclusive_group()
    source.add_argument(
        "--metadata",
        metavar="MODULE:ATTR",
        help="the SQLAlchemy MetaData to build the schema from (e.g. app.models:Base.metadata; a declarative "
        "base stands for its .metadata); it is imported to check it",
    )
    source.add_argument(
        "--migrations",
        metavar="SPEC",
        help="the migration source, in any dbscope_migrations form (a path is relative to the current directory)",
    )
    init.add_argument("--seed", metavar="SPEC", help="the seed data, in the same forms")
    init.add_argument(
        "--env-var",
        action="append",
        metavar="NAME[:FORMAT]",
        help="a variable the app reads its database URL from (repeat it, or separate with commas); FORMAT as in "
        "dbscope_env_var: sqlalchemy, async, dsn, or a part (host, port, ...)",
    )
    init.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="the isolation strategy (default: clone, or reset when the app reads its database URL at import time)",
    )
    init.add_argument("--url", help="the database URL to write as dbscope_url (default: none, i.e. sqlite://)")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace, out: Out) -> int:
    cwd = Path.cwd().absolute()
    plan = _plan(args, cwd)
    config = plan.config
    changes = {p.key: p.items for p in plan.proposals}
    _validate(plan, changes)
    old = _read(config) if config.exists else ""
    try:
        new = edit_text(config, old, changes) if changes else old
        _check_edit(config, old, new, changes)
    except ConfigEditError as exc:
        block = "".join(_toml_line(k, v, "\n") if config.toml else _ini_line(k, v, "\n") for k, v in changes.items())
        raise UsageError(
            f"cannot add the settings to {config.path} line by line: {exc}; {_NOTHING_WRITTEN}. Add these lines to "
            f"its {config.shown_table} yourself:\n{block.rstrip()}"
        ) from None

    out.line(f"dbscope init, in {cwd}", "bold")
    for label, text, colour in plan.lines:
        out.line(mask_password(f"  {label:<8} {text}"), colour)
    where = plan.shown(config.path)
    if new == old:
        out.line(f"nothing to change in {where}", "green")
        _next_steps(out, plan)
        return EXIT_OK
    out.line()
    before = "/dev/null" if not config.exists else where
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), before, where, lineterm=""):
        colour = None if line.startswith(("---", "+++")) else {"+": "green", "-": "red", "@": "bold"}.get(line[:1])
        out.line(mask_password(line), colour)
    out.line()
    if args.dry_run:
        out.line(f"nothing was written (--dry-run); run again with --yes to write these settings to {where}")
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"dbscope init: {_NOTHING_WRITTEN}: there is no terminal to ask on; run again with --yes to write "
                f"these settings to {where}",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        out.stream.write(f"Write these settings to {where}? [y/N] ")
        out.stream.flush()
        try:
            answer = sys.stdin.readline()
        except OSError:  # the terminal went away
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            out.line(f"{_NOTHING_WRITTEN}")
            return EXIT_PROBLEMS
    if (_read(config) if config.exists else "") != old:
        raise UsageError(f"{where} changed while dbscope init was running; run it again; {_NOTHING_WRITTEN}")
    _write(config.path, new)
    out.line(f"wrote {len(changes)} setting(s) to {where}", "green")
    _next_steps(out, plan)
    return EXIT_OK


def _validate(plan: _Plan, changes: Mapping[str, tuple[str, ...]]) -> None:
    """Every dbscope setting the file will hold must parse, together, as pytest would read them."""
    merged = {key: value for key, value in plan.config.values.items() if key.startswith("dbscope_")}
    merged.update({key: list(items) if key in _LISTS else items[0] for key, items in changes.items()})
    origins = {
        p.key: f"{p.why} on the command line" if p.given else f"what dbscope init found: {p.why}"
        for p in plan.proposals
    }
    try:
        build_config(
            env={},
            ini={s.name: merged[s.ini_name] for s in SETTINGS if s.ini and s.ini_name in merged},
            ini_source=f"config file {plan.shown(plan.config.path)}",
            base_dir=str(plan.root),
            ini_origins={s.name: origins[s.ini_name] for s in SETTINGS if s.ini_name in origins},
        )
    except ConfigError as exc:
        raise UsageError(f"{exc}; {_NOTHING_WRITTEN}") from None


def _read(config: ConfigFile) -> str:
    try:
        return config.path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{config.path} is not UTF-8 ({exc}); save it as UTF-8 and run again; {_NOTHING_WRITTEN}"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {config.path}: {exc.strerror or exc}; {_NOTHING_WRITTEN}") from None


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (to the file a symlink points to) at once: a new file renamed over the old one."""
    target = path.resolve()
    temporary = target.with_name(f".{target.name}.dbscope-init")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise DbscopeError(f"cannot write {path}: {exc.strerror or exc}; {_NOTHING_WRITTEN}") from None


def _next_steps(out: Out, plan: _Plan) -> None:
    out.line("next: dbscope doctor    (checks the settings and builds the template once)")
    out.line("then: pytest")
