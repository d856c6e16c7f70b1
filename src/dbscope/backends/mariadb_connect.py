"""Reaching a MariaDB/MySQL server: where it is, whether it is on this machine, how to connect.

:class:`ServerAddress` holds what a ``mysql://`` / ``mariadb://`` URL says (host, port,
user, password, the database used only to connect, ``?unix_socket=`` and ``?charset=``)
and builds the URLs of the databases dbscope creates. :func:`check_local` refuses a
server that is not on this machine. :func:`connect` opens a PyMySQL connection and turns
a failure into a :class:`BackendUnavailableError` that says what to do.

A server on this machine is reached without TLS (``ssl_disabled``): PyMySQL otherwise
loads the system's certificate store on every connect, which costs many times the
connection itself, paid by every clone and every connection a test opens.

Passwords never appear in a message or log line.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import importlib
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

import pymysql
from pymysql.constants import CLIENT, SERVER_STATUS

from ..errors import BackendUnavailableError, ConfigError
from ..urls import SERVER_PARTS, URL_PARTS, BackendURL, mask_password, no_part
from .servers import is_local_host, require_local

__all__ = [
    "MariaDBConnection",
    "ServerAddress",
    "check_local",
    "connect",
    "connect_client",
    "connect_error",
    "in_transaction",
    "is_local_host",
    "quote_name",
    "server_address",
    "usable",
]

log = logging.getLogger("dbscope.database")

#: Seconds PyMySQL waits for a server that does not answer.
CONNECT_TIMEOUT = 10
DEFAULT_PORT = 3306
_URL_FORMATS = {"sqlalchemy": "mysql+pymysql", "async": "mysql+aiomysql", "dsn": "mysql"}
#: what the URL's query may carry through to the driver (and to the URLs dbscope hands out), and ``driver``
_QUERY_KEYS = ("unix_socket", "charset", "driver")
#: ``?driver=``: the driver of the connections a test gets (``db``), and SQLAlchemy's name for it
DRIVERS = {"pymysql": "mysql+pymysql", "mysqlclient": "mysql+mysqldb"}
MYSQLCLIENT_HINT = (
    "pip install mysqlclient (it builds against MariaDB's or MySQL's client library: "
    "`apt-get install libmariadb-dev pkg-config` on Debian and Ubuntu, `brew install mariadb-connector-c pkg-config` "
    "on macOS)"
)
START_ADVICE = (
    "Start it (e.g. `systemctl start mariadb` or `service mariadb start`), "
    "or point dbscope_url (or DBSCOPE_URL) at a running server"
)


def quote_name(name: str) -> str:
    """``name`` as a MySQL identifier: in backticks, a backtick doubled."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class ServerAddress:
    """Where a MariaDB/MySQL server is and who connects, as the URL says (defaults filled in)."""

    host: str
    port: int
    user: str
    password: str
    database: str | None  # only used to connect; dbscope creates its own
    options: tuple[tuple[str, str], ...]
    masked_url: str

    @property
    def unix_socket(self) -> str | None:
        return dict(self.options).get("unix_socket")

    @property
    def driver(self) -> str:
        """``pymysql`` (default) or ``mysqlclient``: the driver of the connections a scope hands out."""
        return dict(self.options).get("driver", "pymysql")

    @property
    def where(self) -> str:
        """``host:port`` for messages (a socket is shown as its path)."""
        if self.unix_socket:
            return f"the socket {self.unix_socket}"
        return f"{self.host}:{self.port}"

    @functools.cached_property
    def local(self) -> bool:
        """Whether the server is on this machine (asked once: every connection of the run needs it)."""
        return bool(self.unix_socket) or is_local_host(self.host)

    def connect_args(self, database: str | None) -> dict[str, Any]:
        """Keyword arguments of ``pymysql.connect`` for ``database`` (holds the password)."""
        options = dict(self.options)
        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": database,
            "connect_timeout": CONNECT_TIMEOUT,
            "charset": options.get("charset", "utf8mb4"),
        }
        if options.get("unix_socket"):
            args["unix_socket"] = options["unix_socket"]
        if self.local:
            args["ssl_disabled"] = True
        return args

    def part(self, database: str, name: str) -> str:
        if name == "host":
            return self.host
        if name == "port":
            return str(self.port)
        if name == "user":
            return self.user
        if name == "password":
            return self.password
        if name == "database":
            return database
        raise ConfigError(
            f"{database} is a database of a MariaDB/MySQL server, which has {no_part(name, SERVER_PARTS)}"
        )

    def url(self, database: str, fmt: str = "sqlalchemy") -> str:
        """``mysql+pymysql://`` (sqlalchemy), ``mysql+aiomysql://`` (async), ``mysql://`` (dsn), or one part."""
        if fmt in URL_PARTS:
            return self.part(database, fmt)
        try:
            scheme = _URL_FORMATS[fmt]
        except KeyError:
            known = ", ".join([*_URL_FORMATS, *SERVER_PARTS])
            raise ConfigError(f"unknown URL format {fmt!r}; use one of {known}") from None
        if fmt == "sqlalchemy":
            scheme = DRIVERS[self.driver]
        netloc = quote(self.user, safe="")
        if self.password:
            netloc += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc += f"@{host}:{self.port}"
        query = {key: value for key, value in self.options if key != "driver"}
        if fmt == "sqlalchemy" and self.local and self.driver == "pymysql":
            query.setdefault("ssl_disabled", "true")  # SQLAlchemy passes it on to PyMySQL
        tail = f"?{urlencode(query, safe='/')}" if query else ""
        return f"{scheme}://{netloc}/{quote(database, safe='')}{tail}"

    def __repr__(self) -> str:
        return f"ServerAddress({self.masked_url!r})"


def server_address(url: BackendURL) -> ServerAddress:
    """The address of a ``mysql://`` / ``mariadb://`` URL; an unknown query option is a ConfigError."""
    options = parse_qsl(url.query, keep_blank_values=True)
    unknown = sorted({key for key, _ in options} - set(_QUERY_KEYS))
    if unknown:
        raise ConfigError(
            f"dbscope_url {url.masked!r}: unknown option(s) {', '.join(unknown)}; "
            f"a MariaDB/MySQL URL takes {', '.join(_QUERY_KEYS)}"
        )
    driver = dict(options).get("driver", "pymysql")
    if driver not in DRIVERS:
        raise ConfigError(
            f"dbscope_url {url.masked!r}: unknown driver {driver!r}; use driver=pymysql (the default) or "
            "driver=mysqlclient"
        )
    if driver == "mysqlclient":
        _mysqldb_class()  # installed, or a clear error now rather than at the first test
    return ServerAddress(
        host=url.host or "localhost",
        port=url.port or DEFAULT_PORT,
        user=url.user or getpass.getuser(),
        password=url.password or "",
        database=url.database,
        options=tuple(options),
        masked_url=url.masked,
    )


# -- is the server on this machine? -------------------------------------------------------------


def check_local(address: ServerAddress, *, allow_remote: bool) -> None:
    """Refuse a server that is not on this machine unless ``allow_remote``."""
    hosts = [] if address.unix_socket else [address.host]
    require_local(hosts, server="MariaDB/MySQL", masked_url=address.masked_url, allow_remote=allow_remote)


# -- connecting -----------------------------------------------------------------------------------


if TYPE_CHECKING:
    _Connection = pymysql.connections.Connection[Any]
else:  # generic in the stubs only
    _Connection = pymysql.connections.Connection


class MariaDBConnection(_Connection):
    """The PyMySQL connection dbscope hands out for a scope's database.

    ``execute(sql, args)`` returns a cursor, as sqlite3's and psycopg's connections do.
    ``cancel()`` interrupts the statement running on it (``KILL QUERY`` from a connection of
    its own: the one running it is busy), which the client sends when a statement outlives
    the close timeout.
    """

    address: ServerAddress | None = None

    def thread_id(self) -> int:
        """The server's id of this connection (``KILL`` takes it; ``PROCESSLIST.ID`` shows it)."""
        return int(self.server_thread_id[0])  # type: ignore[attr-defined]  # set at connect, not in the stubs

    def execute(self, sql: str, args: Any = None) -> Any:
        cursor = self.cursor()
        cursor.execute(sql, args)
        return cursor

    def cancel(self) -> None:
        if self.address is not None and self.open:
            kill_query(self.address, self.thread_id())


def kill_query(address: ServerAddress, thread_id: int) -> None:
    """Interrupt the statement running on session ``thread_id`` (``KILL QUERY``, from a connection of its own)."""
    try:
        killer = pymysql.connect(**address.connect_args(None))
    except pymysql.Error as exc:
        log.debug("could not connect to interrupt a statement: %s", exc)
        return
    try:
        with killer.cursor() as cursor:
            cursor.execute("KILL QUERY %s", (int(thread_id),))
    except pymysql.Error as exc:  # the statement ended meanwhile
        log.debug("KILL QUERY failed: %s", exc)
    finally:
        killer.close()


_mysqldb: Any = None
_mysqldb_lock = threading.Lock()


def _mysqldb_class() -> Any:
    """mysqlclient's connection class with what dbscope's clients use (``execute``, ``cancel``); imported once."""
    global _mysqldb
    with _mysqldb_lock:
        if _mysqldb is None:
            try:
                connections = importlib.import_module("MySQLdb.connections")
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"dbscope_url asks for driver=mysqlclient, which is not installed ({exc}): {MYSQLCLIENT_HINT}; "
                    "or leave driver= out for PyMySQL"
                ) from exc

            class MySQLdbConnection(connections.Connection):  # type: ignore[misc, name-defined]
                """The mysqlclient connection dbscope hands out when the URL says ``driver=mysqlclient``.

                mysqlclient refuses any call (``thread_id()`` too) while another thread runs a
                statement on the connection: ``cancel()`` uses the id noted at connect.
                """

                address: ServerAddress | None = None
                session_id = 0

                def execute(self, sql: str, args: Any = None) -> Any:
                    cursor = self.cursor()
                    cursor.execute(sql, args)
                    return cursor

                def cancel(self) -> None:
                    if self.address is not None and self.session_id:
                        kill_query(self.address, self.session_id)

            _mysqldb = MySQLdbConnection
        return _mysqldb


def connect_client(address: ServerAddress, database: str, *, autocommit: bool) -> Any:
    """A connection for a scope's clients, by the URL's driver (PyMySQL, or mysqlclient when it says so)."""
    if address.driver != "mysqlclient":
        return connect(address, database, autocommit=autocommit, scoped=True)
    cls = _mysqldb_class()
    args = address.connect_args(database)
    args.pop("ssl_disabled", None)  # libmariadb/libmysqlclient connect without TLS unless asked to
    args["autocommit"] = autocommit
    try:
        conn = cls(**args)
    except Exception as exc:  # MySQLdb.Error: the same codes and messages as PyMySQL's
        raise connect_error(exc, address, database) from exc
    conn.address = address
    conn.session_id = int(conn.thread_id())
    return conn


def connect(
    address: ServerAddress,
    database: str | None,
    *,
    autocommit: bool = True,
    multi: bool = False,
    scoped: bool = False,
) -> MariaDBConnection:
    """Connect to ``database`` (None: to no database); a failure is a BackendUnavailableError that says what to do.

    ``multi``: the connection may send several statements at once (dbscope's own clones and restores).
    """
    args = address.connect_args(database)
    args["autocommit"] = autocommit
    if multi:
        args["client_flag"] = CLIENT.MULTI_STATEMENTS
    try:
        conn = MariaDBConnection(**args)
    except pymysql.Error as exc:
        raise connect_error(exc, address, database) from exc
    if scoped:
        conn.address = address
    return conn


def in_transaction(conn: Any) -> bool:
    """Whether ``conn`` has a transaction open (the server says so with every reply; mysqlclient: ask it)."""
    status = getattr(conn, "server_status", None)
    if status is None:  # mysqlclient keeps no reply's status: one round trip
        cursor = conn.cursor()
        try:
            cursor.execute("SELECT @@in_transaction")
            return bool(cursor.fetchone()[0])
        finally:
            cursor.close()
    return bool(status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)


def usable(conn: Any) -> bool:
    """Whether ``conn`` still reaches its server (a ping, reconnecting never)."""
    if conn is None or not conn.open:
        return False
    try:
        if isinstance(conn, pymysql.connections.Connection):
            conn.ping(reconnect=False)
        else:  # mysqlclient: never reconnects unless told to
            conn.ping()
    except Exception:  # pymysql.Error, MySQLdb.Error
        with contextlib.suppress(Exception):
            conn.close()
        return False
    return True


def connect_error(exc: BaseException, address: ServerAddress, database: str | None) -> BackendUnavailableError:
    """The BackendUnavailableError for a failed connection attempt (raise it ``from exc``)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = mask_password(str(exc.args[1]) if len(exc.args) > 1 else str(exc)).strip()
    where, user = address.where, address.user
    if code == 1045:  # ER_ACCESS_DENIED_ERROR
        return BackendUnavailableError(
            f"the MariaDB/MySQL server at {where} refused user {user!r} ({address.masked_url}): {text}. "
            "Fix the user or password in dbscope_url (or DBSCOPE_URL)."
        )
    if code == 1049:  # ER_BAD_DB_ERROR
        return BackendUnavailableError(
            f"the database {database!r} does not exist on the MariaDB/MySQL server at {where} "
            f"({address.masked_url}). dbscope only uses the database in dbscope_url to connect (it creates its "
            "own); leave it out (mysql://user@host:port/) or name one that exists."
        )
    if code in (1040, 1203):  # too many connections
        return BackendUnavailableError(
            f"the MariaDB/MySQL server at {where} has no connection left for dbscope: {text}. Close idle "
            "connections (SHOW PROCESSLIST), run fewer xdist workers, or raise max_connections."
        )
    if code in (1044, 1130):  # no access to the database, host not allowed
        return BackendUnavailableError(
            f"the MariaDB/MySQL server at {where} does not let user {user!r} in ({address.masked_url}): {text}. "
            "Grant the user access, or use another user in dbscope_url."
        )
    return BackendUnavailableError(
        f"cannot reach the MariaDB/MySQL server at {where} ({address.masked_url}): {text}. {START_ADVICE}."
    )


class Lent:
    """A connection shared by threads, one statement at a time (dbscope's admin connection)."""

    def __init__(self, open_conn: Any) -> None:
        self._open = open_conn
        self._conn: Any = None
        self.lock = threading.RLock()

    def get(self) -> Any:
        """The connection, reopened when the server dropped it (hold ``lock`` while using it)."""
        if self._conn is None or not usable(self._conn):
            self._conn = self._open()
        return self._conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
