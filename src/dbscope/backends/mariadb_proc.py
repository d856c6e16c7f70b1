"""A throwaway MariaDB server: the server behind ``mysql+proc://`` and ``mariadb+proc://``.

    with ThrowawayServer() as server:
        pymysql.connect(host="127.0.0.1", port=server.port, user="root")   # server.url: mysql://root@127.0.0.1:<port>/

A server is an object with an explicit lifecycle (:class:`ServerState`: new -> running ->
stopped; it cannot be started again once stopped). ``start()`` finds ``mariadbd`` and
``mariadb-install-db``, makes a directory of its own on tmpfs (``/dev/shm`` when
writable), copies an initialised data directory into it and starts ``mariadbd`` on a
free loopback port (retried on another if the port was taken meanwhile), binary log
off, InnoDB's log flushed once a second. It is ready when its socket appears.

The initialised data directory is made once per MariaDB version by
``mariadb-install-db`` (root@127.0.0.1 without a password, no test database) and kept
in ``~/.cache/dbscope/mariadb/`` (``$XDG_CACHE_HOME``), built under a temporary name
and renamed when complete: copying it is faster than installing again
(``cache=False``: install every time).

``/etc/mysql/my.cnf`` may say ``user=mysql`` and more: both programs run with
``--no-defaults``. As root, ``mariadbd`` runs as root (``--user=root``), which MariaDB
allows; as another user, as that user.

Directory (``<base>/dbscope_mariadb_<owner pid>_<random>/``)::

    owner.json     the owning process, and how to stop the server (see processes.py)
    data/          the data directory
    mariadbd.pid   the server's pid
    mariadbd.sock  its unix socket
    error.log      its log; its tail is quoted in errors (the directory is also its tmpdir)

The lifecycle and the cleanup are every throwaway server's (throwaway.py, processes.py),
as for ``postgresql+proc://``: ``stop()``, the context manager and ``atexit`` kill the
server and remove the directory; a watchdog process does so when the owner is killed;
the next start removes the directories of dead owners. Nothing of the server is kept,
so it is killed (SIGKILL), not shut down.

Under pytest-xdist the controller starts one server (``PROC.start_shared_server``) and
hands its ``mysql://`` URL to every worker, which use it as a configured server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailableError
from .processes import ServerState, ServerStop, clean_stale, free_port
from .throwaway import ThrowawayProcess, ThrowawayType, query_options

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL
    from .base import Backend

__all__ = [
    "PREFIX",
    "PROC",
    "ServerState",
    "ThrowawayServer",
    "find_programs",
    "is_throwaway_datadir",
    "refuse_mysql",
    "start_server",
]

log = logging.getLogger("dbscope.database")

PREFIX = "dbscope_mariadb_"
#: Nothing of a throwaway server is kept: it is killed, not shut down.
SERVER_STOP = ServerStop("mariadbd.pid", ("mariadbd", "mysqld"), "SIGKILL")
_LOG_FILE = "error.log"
_SOCKET = "mariadbd.sock"
_START_ATTEMPTS = 5
_BIND_FAILURE = ("Address already in use", "Do you already have another server running", "Can't start server: Bind")
#: Options of both programs that shape the data directory.
_DATA_OPTIONS = ("--innodb-log-file-size=4M",)
_SEARCH = ("/usr/sbin", "/usr/libexec", "/usr/local/sbin", "/usr/local/bin", "/usr/bin")

INSTALL_HINT = (
    "install the MariaDB server: `apt-get install mariadb-server` (Debian, Ubuntu), "
    "`dnf install mariadb-server` (Fedora, RHEL), `apk add mariadb` (Alpine) or `brew install mariadb` (macOS); "
    "or point dbscope_url (or DBSCOPE_URL) at a running server: mysql://user@host:port/"
)


def _find(names: tuple[str, ...], bindir: Path | None) -> Path | None:
    for name in names:
        found = shutil.which(
            name, path=str(bindir) if bindir else os.pathsep.join([os.environ.get("PATH", ""), *_SEARCH])
        )
        if found:
            return Path(found)
    return None


def find_programs(bindir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """``mariadbd`` and ``mariadb-install-db`` (or their old names ``mysqld``, ``mysql_install_db``).

    Only in ``bindir`` when given; else on PATH and in /usr/sbin and the like.
    """
    where = Path(bindir) if bindir is not None else None
    server = _find(("mariadbd", "mysqld"), where)
    install = _find(("mariadb-install-db", "mysql_install_db"), where)
    if server is None or install is None:
        missing = " and ".join(
            name
            for name, path in (("mariadbd (or mysqld)", server), ("mariadb-install-db (or mysql_install_db)", install))
            if path is None
        )
        looked = f"in {str(where)!r} (given as bindir)" if where else f"on PATH and in {', '.join(_SEARCH)}"
        raise BackendUnavailableError(f"mysql+proc:// needs MariaDB's {missing}, not found {looked}; {INSTALL_HINT}")
    return server, install


def refuse_mysql(server: Path, version: str) -> None:
    """Raise unless ``version`` (``<server> --version``) is MariaDB's: MySQL's ``mysqld`` is not started.

    On Debian and others ``mysqld`` is MariaDB's server under its old name, and is used. MySQL's
    own ``mysqld`` initialises and starts differently (``--initialize-insecure``, other
    options), so ``mysql+proc://`` names it and stops rather than fail half-way.
    """
    if "mariadb" in version.lower():
        return
    said = " ".join(version.split()) or "nothing"
    raise BackendUnavailableError(
        f"mysql+proc:// starts MariaDB's server, and {server} is not MariaDB's: `{server.name} --version` says "
        f"{said!r}. A throwaway MySQL server is not supported; install MariaDB's server (`mariadbd`) and give "
        f"its directory as bindir (mysql+proc://?bindir=/usr/sbin) if both are installed, or point dbscope_url "
        "at a running server: mysql://user@host:port/"
    )


def is_throwaway_datadir(datadir: str) -> bool:
    """Whether a server's ``@@datadir`` is a throwaway server's (how a worker given its plain URL knows)."""
    return Path(datadir.rstrip("/")).parent.name.startswith(PREFIX)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbscope" / "mariadb"


class ThrowawayServer(ThrowawayProcess):
    """A private MariaDB server on tmpfs for one session; see the module docstring."""

    what = "MariaDB server"
    prefix = PREFIX
    server_stop = SERVER_STOP
    log_file = _LOG_FILE

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        cache: bool = True,
        start_timeout: float = 30.0,
        watchdog: bool = True,
    ) -> None:
        """All options are keyword-only.

        ``bindir``: where mariadbd and mariadb-install-db are (default: searched).
        ``base_dir``: where the server's directory goes (default /dev/shm, else the temp dir).
        ``port``: a fixed port (default: a free one, retried if taken meanwhile).
        ``cache``: copy an initialised data directory kept between runs (default) rather than install one.
        ``watchdog``: clean up after an owner that is killed (on by default).
        """
        super().__init__(base_dir=base_dir, port=port, start_timeout=start_timeout, watchdog=watchdog)
        self._bindir = bindir
        self._cache = cache
        self._programs: tuple[Path, Path] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mysql://root@127.0.0.1:<port>/`` (TCP on loopback)."""
        return f"mysql://root@127.0.0.1:{self._running_port()}/"

    @property
    def socket_path(self) -> Path | None:
        return self._root / _SOCKET if self._root else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._state is ServerState.RUNNING else None

    def __repr__(self) -> str:
        where = f" port={self._port}" if self._state is ServerState.RUNNING else ""
        directory = f" dir={str(self._root)!r}" if self._root else ""
        return f"<ThrowawayServer state={self._state.value}{where}{directory}>"

    # -- steps --

    def _prepare(self) -> Path:
        self._programs = find_programs(self._bindir)
        base = self._base_directory()
        for directory, removed in clean_stale(PREFIX, self._stale_bases(base), SERVER_STOP):
            log.info(
                "%s the throwaway MariaDB server %s: its owner process is gone",
                "removed" if removed else "could not remove",
                directory,
            )
        return base

    def _launch(self) -> None:
        assert self._programs is not None
        server, install = self._programs
        answer = self._run([str(server), "--version"], f"{server.name} --version").stdout
        refuse_mysql(server, answer)
        self._version = answer.split(" Ver ")[-1].split()[0] or None
        self._make_data(server, install)
        self._start_server(server)

    def _user_options(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []  # MariaDB runs as root only when told

    def _install(self, install: Path, datadir: Path) -> None:
        tmpdir = datadir.parent / "tmp"  # its own: bootstraps running at once share nothing in /tmp
        tmpdir.mkdir(exist_ok=True)
        args = [
            str(install),
            "--no-defaults",
            *self._user_options(),
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",  # root@127.0.0.1 without a password
            "--skip-test-db",
            "--skip-name-resolve",
            f"--tmpdir={tmpdir}",
            *_DATA_OPTIONS,
        ]
        result = self._run(args, "mariadb-install-db")
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-2000:]
            raise BackendUnavailableError(
                f"mariadb-install-db failed (exit {result.returncode}) in {datadir}: {output}"
            )

    def _make_data(self, server: Path, install: Path) -> None:
        assert self._root is not None
        began = time.monotonic()
        datadir = self._root / "data"
        if not self._cache:
            self._install(install, datadir)
        else:
            key = hashlib.sha256(f"{self._version}\0{server}\0{os.geteuid()}\0{_DATA_OPTIONS}".encode()).hexdigest()[
                :16
            ]
            cached = _cache_root() / f"data-{key}"
            if not cached.is_dir():
                cached.parent.mkdir(parents=True, exist_ok=True)
                building = Path(tempfile.mkdtemp(prefix=".building-", dir=cached.parent))
                try:
                    self._install(install, building / "data")
                    try:
                        (building / "data").rename(cached)  # another process may have won: its copy is as good
                    except OSError:
                        pass
                finally:
                    shutil.rmtree(building, ignore_errors=True)
            shutil.copytree(cached, datadir, symlinks=True)
        self._timings["data_ms"] = (time.monotonic() - began) * 1000

    def _start_server(self, server: Path) -> None:
        assert self._root is not None
        began = time.monotonic()
        log_path = self._root / _LOG_FILE
        attempts = 1 if self._port_option else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port_option or free_port()
            log_start = self._log_size()
            args = [
                str(server),
                "--no-defaults",
                *self._user_options(),
                f"--datadir={self._root / 'data'}",
                f"--socket={self._root / _SOCKET}",
                f"--pid-file={self._root / 'mariadbd.pid'}",
                f"--log-error={log_path}",
                f"--tmpdir={self._root}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=500",
                *_DATA_OPTIONS,
            ]
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's Ctrl-C must not reach it
            )
            (self._root / "mariadbd.pid").write_text(
                f"{self._process.pid}\n"
            )  # before mariadbd does: the watchdog needs it
            if self._wait_ready():
                self._port = port
                self._timings["server_start_ms"] = (time.monotonic() - began) * 1000
                return
            code = self._process.poll()
            if code is None:
                self._process.kill()
            self._process.wait()
            server_log = self._read_log(log_start)
            if attempt < attempts and code is not None and any(marker in server_log for marker in _BIND_FAILURE):
                log.debug("port %d was taken before the server bound it; retrying on another", port)
                continue
            tail = "\n".join(server_log.strip().splitlines()[-15:])
            why = f"exit {code}" if code is not None else f"not ready within {self._start_timeout:g} s"
            raise BackendUnavailableError(
                f"the throwaway MariaDB server did not start ({why}, port {port}, directory {self._root}). "
                f"Server log:\n{tail}"
            )

    def _wait_ready(self) -> bool:
        """Whether the server came up: its socket appears once it accepts connections."""
        assert self._root is not None and self._process is not None
        deadline = time.monotonic() + self._start_timeout
        socket_path = self._root / _SOCKET
        delay = 0.002
        while time.monotonic() < deadline:
            if socket_path.exists():
                return True
            if self._process.poll() is not None:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.02)
        return False

    def _stop_server(self) -> int | None:
        if self._process is None:
            return None
        pid = self._process.pid
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process = None
        return pid


def start_server(url: Config | BackendURL | str, **options: Any) -> ThrowawayServer:
    """Start the throwaway server a ``mysql+proc://`` (``mariadb+proc://``) URL asks for.

    The URL's query may name ``bindir``, ``dir`` (the base directory) and ``port``;
    ``options`` are passed to :class:`ThrowawayServer` and win over the URL's.
    """
    kwargs = query_options(url, ("mysql+proc", "mariadb+proc"), "mysql+proc://?bindir=/usr/sbin&dir=/dev/shm&port=3307")
    return ThrowawayServer(**{**kwargs, **options}).start()


def _backend(url: str, **options: Any) -> Backend:
    from .mariadb import MariaDBBackend

    return MariaDBBackend(url, **options)


def _driver_errors() -> tuple[type[BaseException], ...]:
    import pymysql

    return (pymysql.Error,)


#: ``mysql+proc://``: the registry's backend type of a throwaway MariaDB server.
PROC = ThrowawayType(scheme="mysql+proc", start=start_server, backend=_backend, driver_errors=_driver_errors)
