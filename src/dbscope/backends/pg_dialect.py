"""The PostgreSQL dialect: SQLite-style placeholders in, psycopg's paramstyle out.

The client's SQL uses ``?`` (positional) and ``:name`` (named) placeholders, as with
SQLite. psycopg wants ``%s`` and ``%(name)s``, and reads every ``%`` of a query that has
parameters as the start of one. :func:`translate` rewrites the placeholders outside
string literals, quoted identifiers, comments and dollar-quoted bodies, leaves ``::type``
casts alone and doubles every literal ``%``. With no arguments the SQL goes out
untouched with ``None`` as parameters, so psycopg treats ``%`` and ``?`` literally.

``?`` is rewritten only when the arguments are a sequence and ``:name`` only when they
are a mapping, so a query with named arguments can still use the ``?`` jsonb operator
and one with positional arguments an array slice such as ``a[lo:hi]``.

This module does not import psycopg.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DIALECT", "PostgreSQLDialect", "translate"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _in_word(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


def _end_of_string(sql: str, i: int) -> int:
    """Offset just past the string literal opening at ``sql[i] == "'"``."""
    backslashes = i > 0 and sql[i - 1] in "eE" and not _in_word(sql, i - 1)
    j, n = i + 1, len(sql)
    while j < n:
        ch = sql[j]
        if ch == "\\" and backslashes:
            j += 2
        elif ch == "'":
            if j + 1 < n and sql[j + 1] == "'":
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return n


def _end_of_identifier(sql: str, i: int) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        if sql[j] == '"':
            if j + 1 < n and sql[j + 1] == '"':
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _end_of_block_comment(sql: str, i: int) -> int:
    """Offset past the ``/* ... */`` comment at ``i``; PostgreSQL nests them."""
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n


def translate(sql: str, args: Any) -> tuple[str, Any]:
    """``(sql, args)`` with ``?``/``:name`` placeholders in psycopg's ``%s``/``%(name)s`` style."""
    if args is None or (not isinstance(args, (str, bytes)) and len(args) == 0):
        return sql, None
    named = isinstance(args, Mapping)
    out: list[str] = []
    start = i = 0  # sql[start:i] is literal text not yet copied to out
    n = len(sql)

    def flush(upto: int) -> None:
        if upto > start:
            out.append(sql[start:upto].replace("%", "%%"))

    while i < n:
        ch = sql[i]
        if ch == "'":
            i = _end_of_string(sql, i)
        elif ch == '"':
            i = _end_of_identifier(sql, i)
        elif ch == "-" and sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif ch == "/" and sql.startswith("/*", i):
            i = _end_of_block_comment(sql, i)
        elif ch == "$" and not _in_word(sql, i) and (tag := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(tag.group(), tag.end())
            i = n if close < 0 else close + len(tag.group())
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2  # a cast: ::int
            elif named and (name := _NAME.match(sql, i + 1)):
                flush(i)
                out.append(f"%({name.group()})s")
                i = start = name.end()
            else:
                i += 1
        elif ch == "?" and not named:
            flush(i)
            out.append("%s")
            i += 1
            start = i
        else:
            i += 1
    flush(n)
    return "".join(out), args


class PostgreSQLDialect:
    """What the client needs to speak PostgreSQL through psycopg."""

    name = "postgresql"

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        return translate(sql, args)

    def begin(self) -> str:
        return "BEGIN"

    def __repr__(self) -> str:
        return "<PostgreSQLDialect>"


DIALECT = PostgreSQLDialect()
