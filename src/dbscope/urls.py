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


def mask_password(text: str) -> str:
    """Return ``text`` with every password in a URL or libpq DSN replaced by ``***``."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}***{m['tail']}", text)
    return _PASSWORD_IN_DSN.sub(lambda m: f"{m['head']}***", text)


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
        raise ConfigError(f"malformed URL {mask_password(value)!r}: {exc}") from None
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
