"""Reaching a PostgreSQL server: where it is, whether it is on this machine, how to connect.

:class:`ServerAddress` holds the connection parameters of a ``postgresql://`` URL as
libpq reads them (so ``?host=/socket/dir``, ``%2F``-encoded socket paths, ``sslmode``
and friends all work) and builds the conninfo and URLs of the databases dbscope creates.
:func:`check_local` refuses a server that is not on this machine. :func:`connect`
opens a connection and turns libpq's failures into :class:`BackendUnavailableError`
messages that say what to do; :func:`connection_budget` explains a full server.

Passwords never appear in a message or log line: every text goes through
:func:`~dbscope.urls.mask_password`, and only ``host:port`` and the role are named.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import select
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import BackendUnavailableError, ConfigError
from ..urls import SERVER_PARTS, URL_PARTS, BackendURL, mask_password, no_part
from .servers import is_local_host, require_local

__all__ = [
    "Budget",
    "ScopeConnection",
    "ServerAddress",
    "budget_message",
    "check_local",
    "connect",
    "connection_budget",
    "is_local_host",
    "sentences",
    "server_address",
    "usable",
]

log = logging.getLogger("dbscope.database")

#: Seconds libpq waits for a server that does not answer, unless the URL says otherwise.
CONNECT_TIMEOUT = 10
#: Server-side TCP keepalives: a session whose client machine vanished ends within ~30 s,
#: which releases the run's liveness lock (see pg_owner).
KEEPALIVE_SQL = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"

_URL_FORMATS = {"sqlalchemy": "postgresql+psycopg", "async": "postgresql+asyncpg", "dsn": "postgresql"}
_NETLOC_KEYS = ("user", "password", "host", "port", "dbname")
START_ADVICE = (
    "Start it (e.g. `pg_ctlcluster 15 main start` or `systemctl start postgresql`), "
    "point dbscope_url (or DBSCOPE_URL) at a running server, "
    "or use postgresql+proc:// to let dbscope start a throwaway one"
)


@dataclass(frozen=True)
class ServerAddress:
    """The connection parameters of a server, as libpq parsed them from the URL."""

    params: tuple[tuple[str, str], ...]
    masked_url: str

    @property
    def options(self) -> dict[str, str]:
        return dict(self.params)

    @property
    def host(self) -> str:
        """The host (or socket directory) libpq will use; the default socket when unset."""
        return self.options.get("host") or os.environ.get("PGHOST") or "/var/run/postgresql"

    @property
    def port(self) -> str:
        return self.options.get("port") or os.environ.get("PGPORT") or "5432"

    @property
    def user(self) -> str:
        return self.options.get("user") or os.environ.get("PGUSER") or getpass.getuser()

    @property
    def maintenance_db(self) -> str:
        return self.options.get("dbname") or os.environ.get("PGDATABASE") or self.user

    @property
    def where(self) -> str:
        """``host:port`` for messages (a socket directory is shown as a path)."""
        host = self.host
        if host.startswith("/"):
            return f"the socket in {host} (port {self.port})"
        return f"{host}:{self.port}"

    def conninfo(self, dbname: str, **extra: Any) -> str:
        """A libpq conninfo string for ``dbname`` on this server (contains the password)."""
        options = self.options
        options["dbname"] = dbname
        options.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        options.update({k: str(v) for k, v in extra.items() if v is not None})
        return make_conninfo("", **options)

    def part(self, dbname: str, name: str) -> str:
        """One part of the URL of ``dbname``, as libpq will connect: for an app that builds its URL from parts.

        ``host`` (a socket directory when the URL names one), ``port``, ``user``: what the
        URL says, else libpq's defaults (PGHOST, PGPORT, PGUSER, the login name).
        ``password``: the URL's, empty when it has none (libpq then reads ~/.pgpass).
        """
        if name == "host":
            return self.host
        if name == "port":
            return self.port
        if name == "user":
            return self.user
        if name == "password":
            return self.options.get("password", "")
        if name == "database":
            return dbname
        raise ConfigError(f"{dbname} is a database of a PostgreSQL server, which has {no_part(name, SERVER_PARTS)}")

    def url(self, dbname: str, fmt: str = "sqlalchemy") -> str:
        """``postgresql+psycopg://`` (sqlalchemy), ``postgresql+asyncpg://`` (async) or ``postgresql://`` (dsn);
        or one part of it (``host``, ``port``, ``user``, ``password``, ``database``: see :meth:`part`)."""
        if fmt in URL_PARTS:
            return self.part(dbname, fmt)
        try:
            scheme = _URL_FORMATS[fmt]
        except KeyError:
            known = ", ".join([*_URL_FORMATS, *SERVER_PARTS])
            raise ConfigError(f"unknown URL format {fmt!r}; use one of {known}") from None
        options = self.options
        user, password = options.get("user"), options.get("password")
        netloc = ""
        if user:
            netloc = quote(user, safe="")
            if password:
                netloc += ":" + quote(password, safe="")
            netloc += "@"
        query: dict[str, str] = {}
        host = options.get("host", "")
        if host and not host.startswith("/") and "," not in host:
            netloc += f"[{host}]" if ":" in host else host
        elif host:
            query["host"] = host
        if options.get("port"):
            netloc += f":{options['port']}"
        if fmt != "async":  # asyncpg takes none of libpq's other parameters
            query.update({k: v for k, v in options.items() if k not in _NETLOC_KEYS})
        tail = f"?{urlencode(query, safe='/')}" if query else ""
        return f"{scheme}://{netloc}/{quote(dbname, safe='')}{tail}"

    def __repr__(self) -> str:
        return f"ServerAddress({self.masked_url!r})"


def server_address(url: BackendURL) -> ServerAddress:
    """Parse a ``postgresql://`` (or ``postgres://``, ``postgresql+psycopg://``) URL with libpq's rules."""
    _, _, rest = url.raw.strip().partition("://")
    try:
        params = conninfo_to_dict("postgresql://" + rest)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"dbscope_url {url.masked!r} is not a valid PostgreSQL URL: {mask_password(str(exc))}"
        ) from None
    return ServerAddress(tuple((k, str(v)) for k, v in params.items() if v is not None), url.masked)


# -- is the server on this machine? --------------------------------------------------------


def check_local(address: ServerAddress, *, allow_remote: bool) -> None:
    """Refuse a server that is not on this machine unless ``allow_remote`` (every host of a multi-host URL)."""
    hosts = (address.options.get("hostaddr") or address.host).split(",")
    require_local(hosts, server="PostgreSQL", masked_url=address.masked_url, allow_remote=allow_remote)


# -- connecting ------------------------------------------------------------------------------


class ScopeConnection(psycopg.Connection[Any]):
    """The psycopg connection dbscope hands out for a scope's database.

    ``close()`` first cancels a statement still running on it (one that another thread,
    or a test stopped by a timeout, left behind): a plain close only drops the socket,
    and the server would go on running the statement (and holding its locks) until the
    database is dropped. A cancel costs a connection to the server, so it is sent only
    when a statement is running (``transaction_status`` ACTIVE); closing an idle
    connection stays free. Then it waits, at most ``close_timeout`` seconds, for the
    thread running the statement to let go of the connection before closing it.
    """

    close_timeout: float = 5.0

    def close(self) -> None:
        if not self.closed and self.info.transaction_status is psycopg.pq.TransactionStatus.ACTIVE:
            log.warning("a statement was still running on a connection to %s at close; cancelling it", self.info.dbname)
            try:
                self.cancel_safe(timeout=self.close_timeout)
            except psycopg.Error as exc:  # the statement may have just ended, or the server gone
                log.debug("cancelling the statement running on %s failed: %s", self.info.dbname, exc)
            if self.lock.acquire(timeout=self.close_timeout):  # the thread that ran it got its error
                self.lock.release()
        super().close()


def connect(
    address: ServerAddress,
    dbname: str,
    *,
    autocommit: bool = True,
    application_name: str = "dbscope",
    keepalive: bool = False,
    budget_from: psycopg.Connection[Any] | None = None,
    connection_class: type[psycopg.Connection[Any]] = psycopg.Connection,
) -> psycopg.Connection[Any]:
    """Connect to ``dbname``; every failure becomes a BackendUnavailableError that says what to do.

    ``budget_from``: an open connection used to explain a server that has no free slot.
    ``connection_class``: :class:`ScopeConnection` for the connections of a scope's database.
    """
    try:
        conn = connection_class.connect(
            address.conninfo(dbname, application_name=application_name), autocommit=autocommit
        )
    except psycopg.OperationalError as exc:
        raise connect_error(exc, address, dbname, budget_from=budget_from) from exc
    if keepalive and not address.host.startswith("/"):
        try:
            conn.execute(KEEPALIVE_SQL)
            if not autocommit:
                conn.commit()
        except psycopg.Error:  # only an optimisation of how fast a vanished run is noticed
            log.debug("could not set TCP keepalives on %s", address.where)
    return conn


def usable(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection still reaches its server (False: closed, broken, or cut off).

    A server that restarted or terminated the session has closed the socket, but psycopg
    only notices on the next statement. An idle session's socket has nothing to read
    unless the server said goodbye, so a ``select()`` finds that for free; only then is a
    ``SELECT 1`` sent to tell a real goodbye from a harmless message.
    """
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
        return True  # in use (by a transaction or another thread): not ours to probe
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if readable:
            conn.execute("SELECT 1")
            if not conn.autocommit:
                conn.rollback()
    except (psycopg.Error, OSError, ValueError):
        with contextlib.suppress(Exception):
            conn.close()
        return False
    return True


def connect_error(
    exc: BaseException, address: ServerAddress, dbname: str, *, budget_from: psycopg.Connection[Any] | None = None
) -> BackendUnavailableError:
    """The BackendUnavailableError for a failed connection attempt (to raise ``from exc``).

    Each message says what failed, gives libpq's account as sentences (:func:`sentences`),
    and ends with what to do.
    """
    text = mask_password(str(exc).strip())
    told = sentences(text)
    lowered = text.lower()
    sqlstate = getattr(exc, "sqlstate", None)
    user = address.user
    where = address.where
    if sqlstate == "28P01" or "password authentication failed" in lowered or "no password supplied" in lowered:
        return BackendUnavailableError(
            f"the PostgreSQL server at {where} rejected the password of role {user!r} "
            f"({address.masked_url}): {told} Fix the password in dbscope_url (or DBSCOPE_URL), "
            "or give it through ~/.pgpass or the PGPASSWORD environment variable."
        )
    if "role" in lowered and "does not exist" in lowered:
        return BackendUnavailableError(
            f"the PostgreSQL server at {where} has no role {user!r} ({address.masked_url}): {told} "
            f'Create it (as a superuser: CREATE ROLE "{user}" LOGIN CREATEDB;) or put an existing role in dbscope_url.'
        )
    if "database" in lowered and "does not exist" in lowered:
        return BackendUnavailableError(
            f"the database {dbname!r} does not exist on the PostgreSQL server at {where} ({address.masked_url}). "
            "dbscope only uses the database in dbscope_url to connect (it creates its own); "
            "point it at one that exists, such as postgres."
        )
    if sqlstate in ("53300", "53400") or "too many clients" in lowered or "connection slots are reserved" in lowered:
        detail = ""
        if budget_from is not None and not budget_from.closed:
            try:
                detail = budget_message(connection_budget(budget_from), needed=1) + " "
            except psycopg.Error:
                pass
        return BackendUnavailableError(
            f"the PostgreSQL server at {where} has no connection left for dbscope: {told} {detail}"
            "Close idle sessions (see SELECT datname, usename, application_name, count(*) FROM pg_stat_activity "
            "GROUP BY 1, 2, 3), run fewer xdist workers, or raise max_connections."
        )
    if "permission denied" in lowered or "not permitted to log in" in lowered or "pg_hba.conf" in lowered:
        return BackendUnavailableError(
            f"the PostgreSQL server at {where} does not let role {user!r} connect to {dbname!r} "
            f"({address.masked_url}): {told} Grant CONNECT or fix pg_hba.conf, or use another role in dbscope_url."
        )
    return BackendUnavailableError(
        f"cannot reach the PostgreSQL server at {where} ({address.masked_url}): {told} {START_ADVICE}."
    )


#: psycopg's words before libpq's message, and the severity libpq puts before the server's
_PREFIX = re.compile(r"^(?:connection failed|connection is bad):\s*", re.IGNORECASE)
_SEVERITY = re.compile(r"\b(?:FATAL|ERROR|PANIC):\s+")


def sentences(text: str) -> str:
    """libpq's account of a failed connection, one well-formed sentence per line of it.

    libpq writes a cause per address tried (``connection to server at "127.0.0.1", port
    5432 failed: Connection refused``), each followed by a hint on its own line ("Is the
    server running on that host and accepting TCP/IP connections?"), without closing
    punctuation. Each becomes a sentence: capitalised, ended with a full stop unless it
    ends with one already (or a question mark), psycopg's "connection failed:" and the
    server's "FATAL:" dropped, and a line repeated for another address given once.
    """
    out: list[str] = []
    for line in text.splitlines():
        line = " ".join(_SEVERITY.sub("", _PREFIX.sub("", line.strip())).split())
        if not line:
            continue
        line = line[0].upper() + line[1:]
        if line[-1] not in ".?!":
            line += "."
        if line not in out:
            out.append(line)
    return " ".join(out) or "No reason given."


# -- the connection budget ---------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How many connections the server allows and who uses them."""

    max_connections: int
    reserved: int  # superuser_reserved_connections, unless we are a superuser
    in_use: int
    users: tuple[tuple[str, int], ...]  # "database / application" -> count, biggest first

    @property
    def free(self) -> int:
        return self.max_connections - self.reserved - self.in_use


def connection_budget(conn: psycopg.Connection[Any]) -> Budget:
    """Read max_connections, the reserved slots and what uses the rest."""
    row = conn.execute(
        "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int, "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert row is not None
    max_connections, reserved, superuser = row
    users = conn.execute(
        "SELECT coalesce(datname, '?') || ' / ' || coalesce(nullif(application_name, ''), usename, '?'), count(*) "
        "FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return Budget(
        int(max_connections),
        0 if superuser else int(reserved),
        sum(int(n) for _, n in users),
        tuple((str(who), int(n)) for who, n in users),
    )


def budget_message(budget: Budget, *, needed: int) -> str:
    shown = ", ".join(f"{who}: {n}" for who, n in budget.users[:8])
    more = f" and {len(budget.users) - 8} more" if len(budget.users) > 8 else ""
    reserved = f", {budget.reserved} reserved for superusers" if budget.reserved else ""
    return (
        f"{budget.in_use} of max_connections = {budget.max_connections} are in use{reserved} "
        f"({shown}{more}); {max(budget.free, 0)} free, dbscope needs {needed} more."
    )


def parameters(conn: psycopg.Connection[Any]) -> Mapping[str, Any]:
    """Facts about the server and our role, read once at start."""
    row = conn.execute(
        "SELECT rolsuper, rolcreatedb, current_user, current_setting('server_version_num')::int, "
        "coalesce(current_setting('dbscope.throwaway', true), '') = 'on' "
        "FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row is not None
    return {
        "superuser": bool(row[0]),
        "createdb": bool(row[1]),
        "role": str(row[2]),
        "version": int(row[3]),
        "throwaway": bool(row[4]),  # a cluster dbscope started for one run (postgresql+proc://)
    }
