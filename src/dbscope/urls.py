"""Parsing of the backend URL (once, into a :class:`BackendURL`) and masking of passwords for messages and logs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

from .backends import registry
from .backends.registry import BackendEntry
from .errors import ConfigError

if TYPE_CHECKING:
    from .backends.base import BackendType

__all__ = [
    "FILE_PARTS",
    "SERVER_PARTS",
    "URL_FORMATS",
    "URL_PARTS",
    "BackendURL",
    "mask_password",
    "no_part",
    "parse_backend_url",
    "without_password",
]

#: The forms of a whole database URL: SQLAlchemy's, SQLAlchemy's async driver's, the driver's own
URL_FORMATS = ("sqlalchemy", "async", "dsn")
#: One part of a database's URL, for an application that builds its URL from parts
#: (POSTGRES_SERVER, POSTGRES_PORT, ...): a server's databases have the first five, a
#: database file has a path
URL_PARTS = ("host", "port", "user", "password", "database", "path")
SERVER_PARTS = URL_PARTS[:5]
FILE_PARTS = ("path",)
_PART_TITLES = {"database": "database name", "path": "file path"}

# As urlsplit reads it: the user ends at the first ':', the password at the last '@' of the
# host part (which ends at '/', '?' or '#'), so a raw '@' in a password is masked too.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/?#\s]*:)(?P<pw>[^/?#\s]*)(?P<tail>@)")
# ``password=`` of a libpq DSN, and NAME=VALUE of a variable holding a password (PGPASSWORD=, POSTGRES_PASSWORD=)
_PASSWORD_IN_DSN = re.compile(r"(?P<head>\b\w*password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


_LEADING_URL = re.compile(r"\s*[a-zA-Z][\w+.-]*://")
_PORT = re.compile(r"[0-9]+")


def mask_password(text: str) -> str:
    """Return ``text`` with every password in a URL or libpq DSN replaced by ``***``.

    A text that starts with a URL (a setting's value) is masked the way its author meant
    it, also when the password holds a space or a raw '/', '?' or '#' (where urlsplit
    would end it): only what follows ``user:`` as a port number is left as a port.
    """
    text = _mask_leading_url(text)
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}***{m['tail']}", text)
    return _PASSWORD_IN_DSN.sub(lambda m: f"{m['head']}***", text)


def no_part(part: str, parts: tuple[str, ...], name: str = "NAME") -> str:
    """``no host; use NAME:sqlalchemy or NAME:dsn``: a database without ``part``, and what ``name`` can take instead."""
    choices = [f"{name}:{p}" for p in parts] + [f"{name}:sqlalchemy", f"{name}:dsn"]
    return f"no {_PART_TITLES.get(part, part)}; use {', '.join(choices[:-1])} or {choices[-1]}"


def without_password(url: str) -> str:
    """``url`` without the password of its user part (``scheme://user@host/db``): for tools that ask for it."""
    head, sep, rest = url.partition("://")
    authority_end = min([rest.find(c) for c in "/?#" if c in rest], default=len(rest))
    authority = rest[:authority_end]
    if not sep or "@" not in authority:
        return url
    userinfo, _, host = authority.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{head}://{user}@{host}{rest[authority_end:]}"


def _mask_leading_url(text: str) -> str:
    match = _LEADING_URL.match(text)
    if match is None:
        return text
    head, rest = text[: match.end()], text[match.end() :]
    authority = rest[: min([rest.find(c) for c in "/?#" if c in rest], default=len(rest))]
    if authority.startswith("["):  # an IPv6 host: no user, no password
        return text
    if "@" in authority:  # user:password@host, the password up to the host's '@'
        userinfo = authority.rpartition("@")[0]
        user, colon, _ = userinfo.partition(":")
        return f"{head}{user}:***{rest[len(userinfo) :]}" if colon else text
    user, colon, port = authority.partition(":")
    # user:pa/ss@host: up to the last '@'; so too :0/pass@host, where no host stands before the "port"
    if colon and "@" in rest and (not _PORT.fullmatch(port) or not user):
        return f"{head}{user}:***{rest[rest.rindex('@') :]}"
    return text


@dataclass(frozen=True, eq=False, repr=False)
class BackendURL(str):
    """A backend URL, parsed once: the URL itself (a ``str``, equal to the text it was
    parsed from) carrying its parts and its entry in the backend registry.

    Being the string, it goes wherever the URL went (settings, environment, reports,
    dictionary keys) and its parts can never disagree with it.
    """

    raw: str
    entry: BackendEntry
    path: str | None = None  # the directory of a directory backend (sqlite:///some/dir)
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    query: str = ""

    def __new__(cls, raw: str, *args: Any, **kwargs: Any) -> Self:
        return super().__new__(cls, raw)

    def __getnewargs__(self) -> tuple[str]:  # pickle and copy: str.__new__ takes the text only
        return (self.raw,)

    @property
    def family(self) -> str:
        """``sqlite`` or ``postgresql``: a label for reading; the registry entry decides everything."""
        return self.entry.family

    @property
    def kind(self) -> str:
        """``memory``, ``file``, ``server`` or ``proc``: a label for reading, as :attr:`family`."""
        return self.entry.kind

    @property
    def masked(self) -> str:
        return mask_password(self.raw)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts of :data:`URL_PARTS` its databases' URLs have (what ``NAME:host``, ``NAME:path`` can take).

        A server's databases have a host, port, user, password and name. A directory
        backend's are files with a path, unless the backend sends the URLs that name a
        directory to another one: then its own are none (``sqlite://``, in memory).
        """
        if self.entry.address == "server":
            return SERVER_PARTS
        return () if self.entry.with_directory is not None else FILE_PARTS

    def resolved(self, base_dir: str | None) -> BackendURL:
        """This URL with a relative directory (``sqlite:///dbs``) made absolute under ``base_dir``."""
        if self.path is None or base_dir is None or os.path.isabs(self.path):
            return self
        return replace(self, path=os.path.join(base_dir, self.path))

    def backend_type(self) -> BackendType:
        """The implementation of this URL's backend (imports its driver); BackendUnavailableError if missing."""
        return self.entry.load(self.masked)

    def __repr__(self) -> str:
        return f"BackendURL({self.masked!r})"


def parse_backend_url(raw: str) -> BackendURL:
    """Parse a ``dbscope_url`` value; raise ConfigError with a readable reason.

    An already parsed URL is returned as it is: parsing happens once.
    """
    if isinstance(raw, BackendURL):
        return raw
    value = raw.strip()
    if "://" not in value:
        raise ConfigError(f"{mask_password(value)!r} is not a URL; use {registry.usage()}")
    scheme, _, rest = value.partition("://")
    entry = registry.by_scheme(scheme)
    if entry is None:
        known = ", ".join(registry.schemes())
        raise ConfigError(f"unknown URL scheme {scheme.lower()!r} in {mask_password(value)!r}; known schemes: {known}")
    if entry.address == "directory":
        return _directory_url(value, entry, scheme, rest)
    return _server_url(value, entry)


def _directory_url(value: str, entry: BackendEntry, scheme: str, rest: str) -> BackendURL:
    path_part, _, query = rest.partition("?")
    if path_part.startswith("/") and path_part not in ("/", ""):
        # scheme:///rel/dir -> "rel/dir"; scheme:////abs/dir -> "/abs/dir" (SQLAlchemy's rule)
        if entry.with_directory is not None:
            entry = registry.by_scheme(entry.with_directory) or entry
        return BackendURL(value, entry, path=unquote(path_part[1:]), query=query)
    if path_part not in ("", "/"):
        same = tuple(e for e in registry.BACKENDS if e.address == "directory")
        raise ConfigError(
            f"{mask_password(value)!r}: a {scheme.lower()}:// URL names a directory, not a host "
            f"({mask_password(scheme + '://' + path_part)!r}); use {registry.usage(same)}"
        )
    return BackendURL(value, entry, path=None, query=query)


def _server_url(value: str, entry: BackendEntry) -> BackendURL:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        masked, detail = mask_password(value), str(exc)
        if any(part not in masked for part in re.findall(r"'([^']*)'", detail)):
            # urlsplit quotes what it read as the port: a piece of a password such as 'pa?ss'
            detail = "the port is not a number from 0 to 65535"
        raise ConfigError(f"malformed URL {masked!r}: {detail}") from None
    return BackendURL(
        value,
        entry,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=unquote(parts.path.lstrip("/")) or None,
        query=parts.query,
    )
