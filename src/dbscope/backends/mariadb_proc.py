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

Cleanup is processes.py's, as for ``postgresql+proc://``: ``stop()``, the context
manager and ``atexit`` kill the server and remove the directory; a watchdog process
does so when the owner is killed; the next start removes the directories of dead
owners. Nothing of the server is kept, so it is killed (SIGKILL), not shut down.

Under pytest-xdist the controller starts one server (``PROC.start_shared_server``) and
hands its ``mysql://`` URL to every worker, which use it as a configured server.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, urlsplit

from ..errors import BackendUnavailableError, CleanupError, ConfigError
from .base import GarbageList
from .hostfs import filesystem_type
from .processes import (
    ServerState,
    ServerStop,
    Watchdog,
    clean_stale,
    default_bases,
    destroy,
    free_port,
    make_owned_directory,
    pid_alive,
)
from .servers import templates_note

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Config
    from ..urls import BackendURL
    from .base import Backend, Checkup, GarbageRequest
    from .mariadb import MariaDBBackend

__all__ = [
    "PREFIX",
    "PROC",
    "ServerState",
    "ThrowawayServer",
    "find_programs",
    "is_throwaway_datadir",
    "open_server_backend",
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
            name for name, path in (("mariadbd", server), ("mariadb-install-db", install)) if path is None
        )
        looked = f"in {str(where)!r} (given as bindir)" if where else f"on PATH and in {', '.join(_SEARCH)}"
        raise BackendUnavailableError(f"mysql+proc:// needs MariaDB's {missing}, not found {looked}; {INSTALL_HINT}")
    return server, install


def is_throwaway_datadir(datadir: str) -> bool:
    """Whether a server's ``@@datadir`` is a throwaway server's (how a worker given its plain URL knows)."""
    return Path(datadir.rstrip("/")).parent.name.startswith(PREFIX)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbscope" / "mariadb"


class ThrowawayServer:
    """A private MariaDB server on tmpfs for one session; see the module docstring."""

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
        self._bindir = bindir
        self._base_option = Path(base_dir) if base_dir is not None else None
        self._port_option = port
        self._cache = cache
        self._start_timeout = start_timeout
        self._use_watchdog = watchdog
        self._lock = threading.RLock()
        self._state = ServerState.NEW
        self._owner_pid = os.getpid()
        self._root: Path | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: Watchdog | None = None
        self._version: str | None = None
        self._timings: dict[str, float] = {}

    # -- properties --

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def url(self) -> str:
        """``mysql://root@127.0.0.1:<port>/`` (TCP on loopback)."""
        if self._state is not ServerState.RUNNING or self._port is None:
            raise BackendUnavailableError(
                f"the throwaway MariaDB server is {self._state.value}, not running; "
                + (
                    "call start() or use it as a context manager"
                    if self._state is ServerState.NEW
                    else "create a new ThrowawayServer"
                )
            )
        return f"mysql://root@127.0.0.1:{self._port}/"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def directory(self) -> Path | None:
        """The server's own directory (removed by ``stop()``)."""
        return self._root

    @property
    def socket_path(self) -> Path | None:
        return self._root / _SOCKET if self._root else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._state is ServerState.RUNNING else None

    @property
    def version(self) -> str | None:
        """``mariadbd --version``'s version (``10.11.19-MariaDB``), known once started."""
        return self._version

    @property
    def on_tmpfs(self) -> bool:
        return self._root is not None and filesystem_type(self._root) == "tmpfs"

    @property
    def timings(self) -> dict[str, float]:
        """Milliseconds spent: ``data_ms`` (install or copy), ``server_start_ms``, ``start_ms`` (all), ``stop_ms``."""
        return dict(self._timings)

    def __repr__(self) -> str:
        where = f" port={self._port}" if self._state is ServerState.RUNNING else ""
        directory = f" dir={str(self._root)!r}" if self._root else ""
        return f"<ThrowawayServer state={self._state.value}{where}{directory}>"

    # -- lifecycle --

    def __enter__(self) -> Self:
        if self._state is not ServerState.RUNNING:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Make the data directory and start the server; returns ``self``. Cleans up fully if it fails."""
        with self._lock:
            if self._state is ServerState.RUNNING:
                raise BackendUnavailableError(f"the throwaway MariaDB server is already running ({self.url})")
            if self._state is ServerState.STOPPED:
                raise BackendUnavailableError(
                    "cannot start a throwaway MariaDB server again once it has been stopped; "
                    "create a new ThrowawayServer"
                )
            began = time.monotonic()
            server, install = find_programs(self._bindir)
            base = self._base_option or default_bases()[0]
            if not base.is_dir():
                raise BackendUnavailableError(
                    f"the base directory {str(base)!r} for the throwaway server does not exist"
                )
            for directory, removed in clean_stale(
                PREFIX, [base] if self._base_option else default_bases(), SERVER_STOP
            ):
                log.info(
                    "%s the throwaway MariaDB server %s: its owner process is gone",
                    "removed" if removed else "could not remove",
                    directory,
                )
            try:
                self._root = make_owned_directory(PREFIX, base, SERVER_STOP)
                atexit.register(self._at_exit)
                if self._use_watchdog:
                    self._watchdog = Watchdog(self._root)
                self._version = (
                    self._run([str(server), "--version"], "mariadbd --version").stdout.split(" Ver ")[-1].split()[0]
                    or None
                )
                self._make_data(server, install)
                self._start_server(server)
            except BaseException:  # KeyboardInterrupt too: leave nothing behind
                self._state = ServerState.STOPPED
                self._teardown()
                raise
            self._state = ServerState.RUNNING
            self._timings["start_ms"] = (time.monotonic() - began) * 1000
            log.debug("started %r in %.0f ms", self, self._timings["start_ms"])
            return self

    def stop(self) -> None:
        """Kill the server and remove its directory. Idempotent."""
        with self._lock:
            if self._state is ServerState.NEW:
                self._state = ServerState.STOPPED
                return
            self._state = ServerState.STOPPED
            if self._root is None and self._watchdog is None:
                return
            began = time.monotonic()
            problems = self._teardown()
            self._timings["stop_ms"] = (time.monotonic() - began) * 1000
            if problems:
                raise CleanupError(f"stopping the throwaway MariaDB server: {'; '.join(problems)}")

    # -- steps --

    def _run(self, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                args,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._start_timeout + 30,
            )
        except subprocess.TimeoutExpired:
            raise BackendUnavailableError(f"{what} did not finish within {self._start_timeout + 30:.0f} s") from None
        except OSError as exc:
            raise BackendUnavailableError(f"could not run {what} ({args[0]}): {exc}") from exc

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
            log_start = log_path.stat().st_size if log_path.exists() else 0
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
            server_log = self._read_log(log_path, log_start)
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

    @staticmethod
    def _read_log(path: Path, offset: int) -> str:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _teardown(self) -> list[str]:
        """Kill the server, remove the directory, end the watchdog; return what failed."""
        problems = []
        if self._root is not None:
            if not destroy(self._root, SERVER_STOP):
                if self._process is not None and pid_alive(self._process.pid):
                    problems.append(f"the server (pid {self._process.pid}) would not exit")
                if self._root.exists():
                    problems.append(f"could not remove {self._root}")
            self._root = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        atexit.unregister(self._at_exit)
        return problems

    def _at_exit(self) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child inherited the handler; the server is its parent's
        try:
            self.stop()
        except (CleanupError, OSError) as exc:  # at exit there is no one left to raise to
            log.warning("%s", exc)


def start_server(url: Config | BackendURL | str, **options: Any) -> ThrowawayServer:
    """Start the throwaway server a ``mysql+proc://`` (``mariadb+proc://``) URL asks for.

    The URL's query may name ``bindir``, ``dir`` (the base directory) and ``port``;
    ``options`` are passed to :class:`ThrowawayServer` and win over the URL's.
    """
    raw = str(url if isinstance(url, str) else getattr(url, "raw", None) or getattr(url, "url", ""))
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("mysql+proc", "mariadb+proc"):
        raise ConfigError(f"start_server() needs a mysql+proc:// URL, not {parts.scheme + '://'!r}")
    if parts.netloc or parts.path.strip("/"):
        raise ConfigError(
            f"{raw!r}: mysql+proc:// takes no host, user or database (dbscope chooses them); "
            "options go in the query: mysql+proc://?bindir=/usr/sbin&dir=/dev/shm&port=3307"
        )
    kwargs: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "bindir":
            kwargs["bindir"] = value
        elif key == "dir":
            kwargs["base_dir"] = value
        elif key == "port":
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ConfigError(f"{raw!r}: port must be a number from 1 to 65535, not {value!r}")
            kwargs["port"] = int(value)
        else:
            raise ConfigError(f"{raw!r}: {key!r} is none of bindir, dir and port")
    kwargs.update(options)
    return ThrowawayServer(**kwargs).start()


def open_server_backend(url: Config | BackendURL | str, *, run_id: str, config: Any = None) -> MariaDBBackend:
    """A MariaDB backend on a throwaway server of its own: closing the backend stops it.

    For ``open_backend()`` when one process uses ``mysql+proc://`` by itself (the library,
    or pytest without xdist). Under xdist the controller starts one server with
    :func:`start_server` and workers get its ``mysql://`` URL instead.
    """
    from .mariadb import MariaDBBackend

    server = start_server(url)
    try:
        return MariaDBBackend(server.url, run_id=run_id, config=config, sweep=False, on_close=server.stop)
    except BaseException:
        server.stop()
        raise


class _ThrowawayServerType:
    """``mysql+proc://``: the registry's backend type of a throwaway MariaDB server."""

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import pymysql

        return (pymysql.Error,)

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
        return open_server_backend(url, run_id=run_id, config=config)

    @property
    def shares_server(self) -> bool:
        return True  # one server for every xdist worker, started by the controller

    def start_shared_server(self, url: BackendURL, *, config: Config) -> ThrowawayServer:
        return start_server(url)

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        return GarbageList(nothing_because="a throwaway server (mysql+proc://) is removed with its run")

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        return templates_note(checkup, fingerprint)

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        pass  # on tmpfs, binary log off: as fast as MariaDB clones get


PROC = _ThrowawayServerType()
