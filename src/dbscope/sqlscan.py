"""One scanner for the parts of SQL text where ``;``, ``?``, ``:name`` and ``%`` are not code.

:func:`scan` cuts SQL text into consecutive spans, each of one kind:

* ``STRING``: ``'...'`` (``''`` inside stays in it); an ``E'...'`` string, where ``E``
  (or ``e``) does not end a longer word, also takes backslash escapes (``E'it\\'s'``);
* ``IDENTIFIER``: ``"..."`` (``""`` inside stays in it), and with ``backticks`` and
  ``brackets`` SQLite's backtick-quoted and ``[...]`` identifiers;
* ``COMMENT``: ``--`` to the end of the line (the newline included) and ``/* ... */``,
  which nest as in PostgreSQL, or with ``nested_comments=False`` end at the first ``*/``
  as in SQLite;
* ``DOLLAR``: a PostgreSQL dollar-quoted body, ``$$ ... $$`` or ``$tag$ ... $tag$``, the
  tag starting with a letter, ``_`` or any non-ASCII character (``$é$``), then digits
  too; a ``$`` that continues a word (``price$usd``) or is a parameter (``$1``) opens none;
* ``CODE``: everything in between.

A span left open runs to the end of the text. The spans cover the text exactly, in
order, so callers look for ``;`` or placeholders only inside ``CODE`` spans.
:func:`dbscope.migrations.split_statements` and :func:`dbscope.backends.pg_dialect.translate`
both read SQL through this module, and :func:`psycopg_placeholder` tells the client why
a statement written for psycopg failed. It imports nothing but the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["CODE", "COMMENT", "DOLLAR", "IDENTIFIER", "STRING", "Span", "in_word", "psycopg_placeholder", "scan"]

CODE = "code"
STRING = "string"
IDENTIFIER = "identifier"
COMMENT = "comment"
DOLLAR = "dollar"

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_ESCAPE_BODY = re.compile(r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*", re.DOTALL)
_COMMENT_MARK = re.compile(r"/\*|\*/")
_OPENERS: dict[tuple[bool, bool], re.Pattern[str]] = {
    (backticks, brackets): re.compile(r"['\"$]|--|/\*" + ("|`" if backticks else "") + (r"|\[" if brackets else ""))
    for backticks in (False, True)
    for brackets in (False, True)
}


# outside quotes and comments: a cast, the client's own placeholders (``?``, ``:name``), a
# psycopg-escaped ``%%``, or a psycopg placeholder (``%s``, ``%(name)s``; ``b`` and ``t`` too)
_PLACEHOLDERS = re.compile(
    r"::|(?P<ours>\?|:[A-Za-z_][A-Za-z0-9_]*)|%%|(?P<psycopg>%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[sbt])"
)


class Span(NamedTuple):
    """``sql[start:end]`` is one piece of the given ``kind``."""

    kind: str
    start: int
    end: int


def in_word(sql: str, i: int) -> bool:
    """Whether offset ``i`` continues a word (``price$usd``, ``somE'``)."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


def scan(sql: str, *, nested_comments: bool = True, backticks: bool = False, brackets: bool = False) -> Iterator[Span]:
    """The spans of ``sql`` in order; the defaults follow PostgreSQL's rules."""
    opener = _OPENERS[(backticks, brackets)]
    n = len(sql)
    code = i = 0  # sql[code:] is not yet given out; the next opener is searched from i
    while (found := opener.search(sql, i)) is not None:
        at, mark = found.start(), found.group()
        if mark == "$":
            tag = None if in_word(sql, at) else _DOLLAR_TAG.match(sql, at)
            if tag is None:
                i = at + 1
                continue
            close = sql.find(tag.group(), tag.end())
            kind, end = DOLLAR, n if close < 0 else close + len(tag.group())
        elif mark == "'":
            backslashes = at > 0 and sql[at - 1] in "eE" and not in_word(sql, at - 1)
            kind, end = STRING, _string_end(sql, at + 1, backslashes)
        elif mark in '"`':
            kind, end = IDENTIFIER, _quoted_end(sql, at + 1, mark)
        elif mark == "[":
            close = sql.find("]", at + 1)
            kind, end = IDENTIFIER, n if close < 0 else close + 1
        elif mark == "--":
            close = sql.find("\n", at + 2)
            kind, end = COMMENT, n if close < 0 else close + 1
        else:
            kind, end = COMMENT, _comment_end(sql, at + 2, nested_comments)
        if at > code:
            yield Span(CODE, code, at)
        yield Span(kind, at, end)
        code = i = end
    if code < n:
        yield Span(CODE, code, n)


def psycopg_placeholder(sql: str) -> str | None:
    """The first psycopg placeholder (``%s``, ``%(name)s``) of ``sql`` when it has none of the client's own.

    Placeholders are looked for outside quotes, comments and dollar-quoted bodies; a
    statement with a ``?`` or ``:name`` (not a ``::`` cast) gives None, whatever else it holds.
    """
    found = None
    for kind, lo, hi in scan(sql):
        if kind != CODE:
            continue
        for match in _PLACEHOLDERS.finditer(sql, lo, hi):
            if match.group("ours"):
                return None
            found = found or match.group("psycopg")
    return found


def _quoted_end(sql: str, i: int, quote: str) -> int:
    """Offset just past the quote closing the text that starts at ``i``; a doubled quote does not close."""
    while (close := sql.find(quote, i)) >= 0:
        if not sql.startswith(quote, close + 1):
            return close + 1
        i = close + 2
    return len(sql)


def _string_end(sql: str, i: int, backslashes: bool) -> int:
    if not backslashes:
        return _quoted_end(sql, i, "'")
    body = _ESCAPE_BODY.match(sql, i)
    assert body is not None  # the pattern also matches the empty string
    return body.end() + 1 if sql.startswith("'", body.end()) else len(sql)


def _comment_end(sql: str, i: int, nested: bool) -> int:
    """Offset just past the ``*/`` closing the comment whose body starts at ``i``."""
    if not nested:
        close = sql.find("*/", i)
        return len(sql) if close < 0 else close + 2
    depth = 1
    while (mark := _COMMENT_MARK.search(sql, i)) is not None:
        depth += 1 if mark.group() == "/*" else -1
        i = mark.end()
        if depth == 0:
            return i
    return len(sql)
