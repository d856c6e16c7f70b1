"""The MariaDB/MySQL dialect: SQLite-style placeholders in, PyMySQL's paramstyle out.

The client's SQL uses ``?`` (positional) and ``:name`` (named) placeholders on every
backend. PyMySQL wants ``%s`` and ``%(name)s`` and, when there are arguments, reads every
``%`` as the start of one. :func:`translate` rewrites the placeholders outside MySQL's
string literals (``'...'`` and ``"..."``, where a backslash escapes), backtick-quoted
identifiers and comments (``-- ``, ``#``, ``/* */``), and doubles every ``%``, in those too
(the driver formats the whole statement).
With no arguments the SQL goes out untouched.

This module does not import PyMySQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DIALECT", "MariaDBDialect", "translate"]

# a quoted string or identifier, a comment, or a placeholder; everything else is copied
_TOKEN = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?|`(?:[^`]|``)*`?"""
    r"""|--(?=[ \t\r\n]|$)[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z)"""
    r"""|(?P<positional>\?)|:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<percent>%)""",
    re.DOTALL,
)


def translate(sql: str, args: Any) -> tuple[str, Any]:
    """``(sql, args)`` with ``?``/``:name`` placeholders in PyMySQL's ``%s``/``%(name)s`` style."""
    if args is None or (not isinstance(args, (str, bytes)) and len(args) == 0):
        return sql, None
    named = isinstance(args, Mapping)

    def replace(found: re.Match[str]) -> str:
        if found.group("percent"):
            return "%%"
        if found.group("positional") and not named:
            return "%s"
        name = found.group("name")
        if name is not None and named:
            return f"%({name})s"
        # a quoted string, an identifier, a comment, or the other style's placeholder: the driver formats
        # the whole statement with %, so a % in them is doubled too (LIKE 'a%' would be a bad format)
        return found.group().replace("%", "%%")

    return _TOKEN.sub(replace, sql), args if named else tuple(args)


class MariaDBDialect:
    """What the client needs to speak MariaDB/MySQL through PyMySQL."""

    name = "mysql"

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        return translate(sql, args)

    def begin(self) -> str:
        return "BEGIN"

    def __repr__(self) -> str:
        return "<MariaDBDialect>"


DIALECT = MariaDBDialect()
