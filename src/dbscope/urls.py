"""Parsing of the backend URL and masking of passwords for messages and logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["BackendURL", "mask_password", "parse_backend_url"]

_SCHEMES = {
    "sqlite": ("sqlite", "memory"),
    "sqlite+memory": ("sqlite", "memory"),
    "sqlite+file": ("sqlite", "file"),
    "postgresql": ("postgresql", "server"),
    "postgres": ("postgresql", "server"),
    "postgresql+psycopg": ("postgresql", "server"),
    "postgresql+proc": ("postgresql", "proc"),
}

# As urlsplit reads it: the user ends at the first ':', the password at the last '@' of the
# host part (which ends at '/', '?' or '#'), so a raw '@' in a password is masked too.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/?#\s]*:)(?P<pw>[^/?#\s]*)(?P<tail>@)")
_PASSWORD_IN_DSN = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


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
    if colon and "@" in rest and not _PORT.fullmatch(port):  # user:pa/ss@host: up to the last '@'
        return f"{head}{user}:***{rest[rest.rindex('@') :]}"
    return text


@dataclass(frozen=True)
class BackendURL:
    """A backend URL split into the parts dbscope acts on."""

    raw: str
    family: str  # "sqlite" or "postgresql"
    kind: str  # "memory", "file", "server" or "proc"
    path: str | None = None  # sqlite file directory
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    query: str = ""

    @property
    def masked(self) -> str:
        return mask_password(self.raw)

    def __repr__(self) -> str:
        return f"BackendURL({self.masked!r})"


def parse_backend_url(raw: str) -> BackendURL:
    """Parse a ``dbscope_url`` value; raise ValueError with a readable reason."""
    from .errors import ConfigError

    value = raw.strip()
    if "://" not in value:
        raise ConfigError(
            f"{mask_password(value)!r} is not a URL; use sqlite:// (in memory), "
            "sqlite:///some/dir (a file per test), postgresql://user@host:port/db "
            "or postgresql+proc:// (a throwaway cluster)"
        )
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(sorted(_SCHEMES))
        raise ConfigError(f"unknown URL scheme {scheme!r} in {mask_password(value)!r}; known schemes: {known}")
    family, kind = _SCHEMES[scheme]
    if family == "sqlite":
        path_part, _, query = rest.partition("?")
        if path_part.startswith("/") and path_part not in ("/", ""):
            # sqlite:///rel/dir -> "rel/dir"; sqlite:////abs/dir -> "/abs/dir" (SQLAlchemy's rule)
            return BackendURL(value, family, "file", path=unquote(path_part[1:]), query=query)
        if path_part not in ("", "/"):
            raise ConfigError(
                f"{mask_password(value)!r}: a SQLite URL has no host ({mask_password(scheme + '://' + path_part)!r}); "
                "use sqlite:// for memory "
                "or sqlite:///path/to/dir for files"
            )
        return BackendURL(value, family, kind, path=None, query=query)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        masked, detail = mask_password(value), str(exc)
        if any(part not in masked for part in re.findall(r"'([^']*)'", detail)):
            # urlsplit quotes what it read as the port: a piece of a password such as 'pa?ss'
            detail = "the port is not a number from 0 to 65535"
        raise ConfigError(f"malformed URL {masked!r}: {detail}") from None
    database = unquote(parts.path.lstrip("/")) or None
    return BackendURL(
        value,
        family,
        kind,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=database,
        query=parts.query,
    )
