"""The PostgreSQL dialect: SQLite-style placeholders in, psycopg's paramstyle out.

The client's SQL uses ``?`` (positional) and ``:name`` (named) placeholders, as with
SQLite. psycopg wants ``%s`` and ``%(name)s``, and reads every ``%`` of a query that has
parameters as the start of one. :func:`translate` rewrites the placeholders outside
string literals, quoted identifiers, comments and dollar-quoted bodies (all found by
:mod:`dbscope.sqlscan`, with PostgreSQL's rules), leaves ``::type`` casts alone and
doubles every literal ``%``. With no arguments the SQL goes out
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

from .. import sqlscan

__all__ = ["DIALECT", "PostgreSQLDialect", "translate"]

# outside quotes and comments: a cast (left alone), a positional or a named placeholder
_PLACEHOLDER = re.compile(r"::|\?|:([A-Za-z_][A-Za-z0-9_]*)")


def translate(sql: str, args: Any) -> tuple[str, Any]:
    """``(sql, args)`` with ``?``/``:name`` placeholders in psycopg's ``%s``/``%(name)s`` style."""
    if args is None or (not isinstance(args, (str, bytes)) and len(args) == 0):
        return sql, None
    named = isinstance(args, Mapping)
    out: list[str] = []
    copied = 0  # sql[:copied] is in out
    for kind, lo, hi in sqlscan.scan(sql):
        if kind != sqlscan.CODE:
            continue
        for found in _PLACEHOLDER.finditer(sql, lo, hi):
            name = found.group(1)
            if found.group() == "::" or (name is None) == named:
                continue  # a cast, ``?`` with named arguments or ``:name`` with positional ones
            out.append(sql[copied : found.start()].replace("%", "%%"))
            out.append("%s" if name is None else f"%({name})s")
            copied = found.end()
    out.append(sql[copied:].replace("%", "%%"))
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
