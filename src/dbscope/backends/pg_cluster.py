"""A throwaway PostgreSQL cluster: the server behind ``postgresql+proc://``.

    with ThrowawayCluster() as cluster:
        psycopg.connect(cluster.url)      # postgresql://postgres@127.0.0.1:<port>/postgres

A cluster is an object with an explicit lifecycle (``ClusterState``: new -> running ->
stopped; it cannot be started again once stopped). ``start()`` finds the server
binaries (``bindir=``, else ``pg_config --bindir``, else the highest version under
``/usr/lib/postgresql/*/bin`` or ``/usr/pgsql-*/bin``, else ``PATH``), runs ``initdb``
into a new directory on tmpfs (``/dev/shm`` when writable: each clone copies a file or
more for every table and index and each drop removes them, so on a disk such as ext4
clones get slower under sustained create/drop; benchmarks/bench_pg_clone.py compares
tmpfs with a disk-backed server) and starts the
server with ``pg_ctl -w`` on a free loopback port, durability off (fsync,
full_page_writes, synchronous_commit) and autovacuum off (an autovacuum worker on a
template database delays ``CREATE DATABASE ... TEMPLATE``). If the port was taken
between choosing it and binding it, the start is retried on another port.

Directory (``<base>/dbscope_pgcluster_<owner pid>_<random>/``)::

    owner.json     the owning process (pid, start time, host) and how to stop the server (processes.py)
    data/          the data directory (its postmaster.pid names the server's pid)
    postgres.log   the server's log; its tail is quoted in errors
    .s.PGSQL.<port>  the server's unix socket

Running as root: initdb and postgres refuse to run as root. When ``os.geteuid() == 0``
they run as the ``postgres`` system user (``os_user=`` to choose another) through
``subprocess``'s ``user=``/``group=``/``extra_groups=`` (no shell, no ``preexec_fn``),
and the directory is given to that user. Without such a user, ``start()`` says so and
how to fix it. Not root: everything runs as the current user.

Cleanup that cannot be skipped, from the usual to the worst case:

* ``stop()``, the context manager's exit, and ``atexit`` (which also runs after a
  Ctrl-C's ``KeyboardInterrupt`` ends the program): SIGQUIT to the postmaster (what
  ``pg_ctl stop -m immediate`` sends; polled every few ms instead of pg_ctl's 100 ms),
  then the directory is removed. Idempotent. A Ctrl-C during ``start()`` cleans what
  was started before the interrupt propagates. The terminal's Ctrl-C never reaches
  the server (pg_ctl starts it in its own session).
* The owner is killed (SIGTERM, SIGKILL, a crash, an xdist worker or CI timeout): a
  tiny watchdog process (processes.py, stdlib only, in its own session) holds the read end of a
  pipe from the owner; when the pipe closes without the owner having stopped the
  cluster, it stops the server and removes the directory.
* Anything else (the watchdog killed too): the next ``start()`` on the machine
  removes every ``dbscope_pgcluster_*`` directory whose owner process is dead
  (checked by pid and process start time, on the same host), after stopping its
  postmaster if one still runs. Directories of live owners are never touched.

One process, one cluster: ``open_cluster_backend(url, run_id=...)`` starts a cluster and
returns a PostgreSQL backend on it whose ``close()`` stops it (``open_backend()`` for
``postgresql+proc://``).

One cluster for a whole pytest-xdist run: the controller (the process without
``config.workerinput``) calls ``start_cluster(config)`` once, stops it at
``pytest_unconfigure``, and hands ``cluster.url`` to every worker through
``workerinput``; workers then use that plain ``postgresql://`` URL as if the user had
configured a server, so they never start, own or stop a cluster, and build the template
once between them (the PostgreSQL backend's advisory lock). Without xdist the single
process is the controller.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Config
    from ..urls import BackendURL
    from .base import Backend, Checkup, GarbageRequest
    from .postgresql import PostgreSQLBackend

from ..errors import BackendUnavailableError, CleanupError, ConfigError
from .base import GarbageList
from .hostfs import filesystem_type
from .processes import ServerState as ClusterState
from .processes import (
    ServerStop,
    Watchdog,
    clean_stale,
    default_bases,
    destroy,
    free_port,
    make_owned_directory,
    pid_alive,
    read_pid,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "PREFIX",
    "PROC",
    "ClusterState",
    "ThrowawayCluster",
    "clean_stale_clusters",
    "find_bindir",
    "open_cluster_backend",
    "start_cluster",
]

log = logging.getLogger("dbscope.database")

PREFIX = "dbscope_pgcluster_"
#: A custom server setting every throwaway cluster carries (see PostgreSQLBackend.throwaway).
THROWAWAY_SETTING = "dbscope.throwaway"
_LOG_FILE = "postgres.log"
#: How the cluster's server is stopped at once: SIGQUIT to the postmaster (pg_ctl stop -m immediate)
SERVER_STOP = ServerStop("data/postmaster.pid", ("postgres", "postmaster"), "SIGQUIT")
_free_port = free_port  # the name start() calls (a test takes the port before the server binds it)

#: Server settings of every throwaway cluster; ``settings=`` (or the URL's query) overrides them.
DEFAULT_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "off",
        "autovacuum": "off",
        "jit": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "max_connections": "200",
    }
)

INSTALL_HINT = (
    "install the PostgreSQL server: `apt-get install postgresql` (Debian, Ubuntu), "
    "`dnf install postgresql-server` (Fedora, RHEL), `apk add postgresql` (Alpine) or "
    "`brew install postgresql` (macOS); or name the directory holding initdb with "
    "postgresql+proc://?bindir=/path/to/bin; or point dbscope_url (or DBSCOPE_URL) at a "
    "running server: postgresql://user@host:port/dbname"
)

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_BIND_FAILURE = ("could not bind", "Address already in use", "could not create any TCP/IP sockets")
_START_ATTEMPTS = 5


# --- finding binaries, users and directories ---


def _version_key(path: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", Path(path).parent.name)
    return tuple(int(n) for n in numbers)


def find_bindir(bindir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding PostgreSQL's ``initdb`` and ``pg_ctl``.

    ``bindir`` if given (and only there); else ``pg_config --bindir``; else the highest
    version under ``/usr/lib/postgresql/*/bin`` and ``/usr/pgsql-*/bin``; else ``PATH``.
    Raises ``BackendUnavailableError`` listing where it looked and how to fix it.
    """
    looked: list[str] = []

    def usable(directory: Path) -> bool:
        return all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl"))

    if bindir is not None:
        directory = Path(bindir)
        if usable(directory):
            return directory
        raise BackendUnavailableError(
            f"postgresql+proc:// needs PostgreSQL's initdb and pg_ctl, and they are not in "
            f"{str(directory)!r} (given as bindir); {INSTALL_HINT}"
        )
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and usable(Path(out)):
            return Path(out)
        looked.append(f"`pg_config --bindir` ({out or 'no answer'})")
    else:
        looked.append("`pg_config --bindir` (no pg_config on PATH)")
    candidates = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    for candidate in sorted(candidates, key=_version_key, reverse=True):
        if usable(Path(candidate)):
            return Path(candidate)
    looked.append("/usr/lib/postgresql/*/bin and /usr/pgsql-*/bin")
    initdb = shutil.which("initdb")
    if initdb:
        directory = Path(os.path.realpath(initdb)).parent
        if usable(directory):
            return directory
    looked.append("PATH")
    raise BackendUnavailableError(
        f"postgresql+proc:// needs PostgreSQL's initdb, and it was not found (looked in: "
        f"{'; '.join(looked)}); {INSTALL_HINT}"
    )


@dataclass(frozen=True)
class _OSUser:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool  # run initdb/pg_ctl as this user (we are root)

    def subprocess_options(self) -> dict[str, Any]:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if self.switch:
            env.update(HOME=self.home, USER=self.name, LOGNAME=self.name)
        return env


def _resolve_os_user(os_user: str | None) -> _OSUser:
    import pwd

    euid = os.geteuid()
    if euid != 0:
        me = pwd.getpwuid(euid)
        if os_user is not None and os_user != me.pw_name:
            raise BackendUnavailableError(
                f"cannot run the throwaway PostgreSQL cluster as {os_user!r}: only root can switch "
                f"users, and dbscope runs as {me.pw_name!r}; leave os_user unset to use the current user"
            )
        return _OSUser(me.pw_name, euid, os.getegid(), (), me.pw_dir, switch=False)
    name = os_user or "postgres"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BackendUnavailableError(
            f"dbscope runs as root, and PostgreSQL refuses to run as root, so the throwaway cluster "
            f"runs as the {name!r} system user; there is no such user on this machine. Create it "
            f"(`useradd --system --user-group --home-dir /var/lib/postgresql {name}`; installing the "
            f"postgresql package does this), run the tests as a user other than root, or point "
            f"dbscope_url at a running server: postgresql://user@host:port/dbname"
        ) from None
    if entry.pw_uid == 0:
        raise BackendUnavailableError(
            f"the throwaway PostgreSQL cluster cannot run as {name!r}: it is root (uid 0), and "
            f"PostgreSQL refuses to run as root; name a non-root user (os_user=) such as 'postgres'"
        )
    groups = tuple(g for g in os.getgrouplist(name, entry.pw_gid) if g != entry.pw_gid)
    return _OSUser(name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, switch=True)


def _reachable_by(path: Path, user: _OSUser) -> str | None:
    """The first directory on ``path`` that ``user`` cannot enter, or None."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == user.uid:
            bit = 0o100
        elif st.st_gid == user.gid or st.st_gid in user.groups:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return str(directory)
    return None


def clean_stale_clusters(base_dirs: list[Path] | None = None) -> list[Path]:
    """Remove cluster directories whose owning process is dead; return those removed.

    Stops the postmaster of such a directory first if it still runs. Directories of
    live owners, of other hosts and those this user may not remove are left alone.
    """
    removed = []
    for directory, gone in clean_stale(PREFIX, base_dirs if base_dirs is not None else default_bases(), SERVER_STOP):
        if gone:
            log.info("removed the throwaway cluster %s: its owner process was gone", str(directory))
            removed.append(directory)
        else:
            log.warning("could not remove the stale throwaway cluster %s", str(directory))
    return removed


# --- the cluster ---


class ThrowawayCluster:
    """A private PostgreSQL server on tmpfs for one session; see the module docstring."""

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        os_user: str | None = None,
        start_timeout: float = 60.0,
        watchdog: bool = True,
    ) -> None:
        """All options are keyword-only.

        ``bindir``: where initdb/pg_ctl are (default: searched, see ``find_bindir``).
        ``base_dir``: where the cluster directory goes (default /dev/shm, else the temp dir).
        ``port``: a fixed port (default: a free one, retried if taken meanwhile).
        ``settings``: server settings over ``DEFAULT_SETTINGS``.
        ``os_user``: who runs the server when dbscope runs as root (default ``postgres``).
        ``watchdog``: clean up after an owner that is killed (on by default).
        """
        self._bindir_option = bindir
        self._base_option = Path(base_dir) if base_dir is not None else None
        self._port_option = port
        self._settings = {**DEFAULT_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        for name in self._settings:
            if not _SETTING_NAME.match(name):
                raise ConfigError(f"{name!r} is not a PostgreSQL setting name (in the throwaway cluster's settings)")
        self._os_user_option = os_user
        self._start_timeout = start_timeout
        self._use_watchdog = watchdog
        self._lock = threading.RLock()
        self._state = ClusterState.NEW
        self._owner_pid = os.getpid()
        self._root: Path | None = None
        self._bindir: Path | None = None
        self._version: str | None = None
        self._port: int | None = None
        self._postmaster_pid: int | None = None
        self._user: _OSUser | None = None
        self._watchdog: Watchdog | None = None
        self._timings: dict[str, float] = {}
        self._torn_down = False  # set once _teardown() has run to its end

    # -- properties --

    @property
    def state(self) -> ClusterState:
        return self._state

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres`` (TCP on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self._running_port()}/postgres"

    @property
    def socket_url(self) -> str:
        """The same server through its unix socket (libpq URI with ``host=<dir>``)."""
        port = self._running_port()
        return f"postgresql://postgres@/postgres?host={quote(str(self._root), safe='/')}&port={port}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def directory(self) -> Path | None:
        """The cluster's own directory (removed by ``stop()``)."""
        return self._root

    @property
    def data_dir(self) -> Path | None:
        return self._root / "data" if self._root else None

    @property
    def socket_dir(self) -> Path | None:
        return self._root

    @property
    def log_path(self) -> Path | None:
        return self._root / _LOG_FILE if self._root else None

    @property
    def bindir(self) -> Path | None:
        return self._bindir

    @property
    def version(self) -> str | None:
        """The server's version (``15.18``), known once started."""
        return self._version

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._postmaster_pid if self._state is ClusterState.RUNNING else None

    @property
    def os_user(self) -> str | None:
        """The operating-system user the server runs as."""
        return self._user.name if self._user else None

    @property
    def settings(self) -> dict[str, str]:
        return dict(self._settings)

    @property
    def on_tmpfs(self) -> bool:
        return self._root is not None and filesystem_type(self._root) == "tmpfs"

    @property
    def timings(self) -> dict[str, float]:
        """Milliseconds spent: ``initdb_ms``, ``server_start_ms``, ``start_ms`` (all), ``stop_ms``."""
        return dict(self._timings)

    def _running_port(self) -> int:
        if self._state is not ClusterState.RUNNING or self._port is None:
            raise BackendUnavailableError(
                f"the throwaway PostgreSQL cluster is {self._state.value}, not running; "
                + (
                    "call start() or use it as a context manager"
                    if self._state is ClusterState.NEW
                    else "create a new ThrowawayCluster"
                )
            )
        return self._port

    def __repr__(self) -> str:
        if self._state is ClusterState.RUNNING:
            where = f" url={self.url!r}"
        else:
            where = ""
        version = f" version={self._version!r}" if self._version else ""
        directory = f" dir={str(self._root)!r}" if self._root else ""
        return f"<ThrowawayCluster state={self._state.value}{where}{version}{directory}>"

    # -- lifecycle --

    def __enter__(self) -> Self:
        if self._state is not ClusterState.RUNNING:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """initdb and start the server; returns ``self``. Cleans up fully if it fails."""
        with self._lock:
            if self._state is ClusterState.RUNNING:
                raise BackendUnavailableError(f"the throwaway PostgreSQL cluster is already running ({self.url})")
            if self._state is ClusterState.STOPPED:
                raise BackendUnavailableError(
                    "cannot start a throwaway PostgreSQL cluster again once it has been stopped; "
                    "create a new ThrowawayCluster"
                )
            began = time.monotonic()
            self._bindir = find_bindir(self._bindir_option)
            self._user = _resolve_os_user(self._os_user_option)
            base = self._choose_base(self._user)
            clean_stale_clusters([base] if self._base_option else default_bases())
            try:
                self._make_directory(base, self._user)
                atexit.register(self._at_exit)
                if self._use_watchdog:
                    assert self._root is not None
                    self._watchdog = Watchdog(self._root)
                self._initdb()
                self._start_server()
            except BaseException:  # KeyboardInterrupt too: leave nothing behind
                self._state = ClusterState.STOPPED
                self._teardown()
                raise
            self._state = ClusterState.RUNNING
            self._timings["start_ms"] = (time.monotonic() - began) * 1000
            log.debug("started %r in %.0f ms", self, self._timings["start_ms"])
            return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its directory. Idempotent."""
        with self._lock:
            if self._state is ClusterState.NEW:
                self._state = ClusterState.STOPPED
                return
            self._state = ClusterState.STOPPED
            if self._torn_down:
                return
            began = time.monotonic()
            problems = self._teardown()
            self._timings["stop_ms"] = (time.monotonic() - began) * 1000
            log.debug("stopped the throwaway cluster %s in %.0f ms", str(self._root), self._timings["stop_ms"])
            if problems:
                raise CleanupError(f"stopping the throwaway PostgreSQL cluster: {'; '.join(problems)}")

    # -- steps --

    def _choose_base(self, user: _OSUser) -> Path:
        base = self._base_option or default_bases()[0]
        if not base.is_dir():
            raise BackendUnavailableError(f"the base directory {str(base)!r} for the throwaway cluster does not exist")
        if user.switch:
            blocked = _reachable_by(base, user)
            if blocked:
                raise BackendUnavailableError(
                    f"the throwaway cluster runs as {user.name!r}, who cannot enter {blocked!r} (on the "
                    f"way to {str(base)!r}); choose a base directory it can reach, such as /dev/shm or /tmp"
                )
        return base

    def _make_directory(self, base: Path, user: _OSUser) -> None:
        self._root = make_owned_directory(PREFIX, base, SERVER_STOP)
        if user.switch:
            os.chown(self._root, user.uid, user.gid)

    def _run(self, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
        assert self._user is not None and self._root is not None
        try:
            return subprocess.run(
                args,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd=self._root,
                env=self._user.env(),
                timeout=self._start_timeout + 10,
                **self._user.subprocess_options(),
            )
        except subprocess.TimeoutExpired:
            raise BackendUnavailableError(
                f"{what} did not finish within {self._start_timeout + 10:.0f} s (throwaway cluster in {self._root})"
            ) from None
        except OSError as exc:
            raise BackendUnavailableError(f"could not run {what} ({args[0]}): {exc}") from exc

    def _initdb(self) -> None:
        assert self._bindir is not None and self._root is not None
        began = time.monotonic()
        version = self._run([str(self._bindir / "initdb"), "--version"], "initdb --version").stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", version)
        major = int(match[1]) if match else 0
        args = [
            str(self._bindir / "initdb"),
            "-D",
            str(self._root / "data"),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        if major >= 13:
            args.append("--no-instructions")
        result = self._run(args, "initdb")
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise BackendUnavailableError(
                f"initdb failed for the throwaway cluster in {self._root} (exit {result.returncode}): {output}"
            )
        try:
            self._version = (self._root / "data" / "PG_VERSION").read_text().strip()
        except OSError:
            self._version = None
        if match and self._version and match[1] == self._version:
            self._version = match[0]  # the full version, 15.18
        self._timings["initdb_ms"] = (time.monotonic() - began) * 1000

    def _server_options(self, port: int) -> str:
        assert self._root is not None
        options = ["-p", str(port), "-k", str(self._root), "-c", "listen_addresses=127.0.0.1"]
        # tells every backend on this server, in any process, that its databases vanish with the run
        # (a caller that keeps the cluster itself may say otherwise in its settings)
        options += ["-c", f"{THROWAWAY_SETTING}=on"]
        for name, value in self._settings.items():
            options += ["-c", f"{name}={value}"]
        return " ".join(shlex.quote(o) for o in options)

    def _start_server(self) -> None:
        assert self._bindir is not None and self._root is not None
        began = time.monotonic()
        log_path = self._root / _LOG_FILE
        attempts = 1 if self._port_option else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port_option or _free_port()
            log_start = log_path.stat().st_size if log_path.exists() else 0
            args = [
                str(self._bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                str(int(self._start_timeout)),
                "-D",
                str(self._root / "data"),
                "-l",
                str(log_path),
                "-o",
                self._server_options(port),
            ]
            result = self._run(args, "pg_ctl start")
            if result.returncode == 0:
                self._port = port
                self._postmaster_pid = read_pid(self._root / "data" / "postmaster.pid")
                self._timings["server_start_ms"] = (time.monotonic() - began) * 1000
                return
            server_log = self._read_log(log_start)
            if attempt < attempts and any(marker in server_log for marker in _BIND_FAILURE):
                log.debug("port %d was taken before the server bound it; retrying on another", port)
                continue
            tail = "\n".join(server_log.strip().splitlines()[-15:]) or (result.stderr or result.stdout).strip()
            raise BackendUnavailableError(
                f"the throwaway PostgreSQL server did not start (pg_ctl exit {result.returncode}, port {port}, "
                f"directory {self._root}). Server log:\n{tail}"
            )

    def _read_log(self, offset: int) -> str:
        try:
            with open(self._root / _LOG_FILE, "rb") as f:  # type: ignore[operator]
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _teardown(self) -> list[str]:
        """Stop the server, remove the directory, end the watchdog; return what failed."""
        problems = []
        if self._root is not None:
            pid = read_pid(self._root / "data" / "postmaster.pid")
            if not destroy(self._root, SERVER_STOP):
                if pid is not None and pid_alive(pid):
                    problems.append(f"the server (pid {pid}) would not exit")
                if self._root.exists():
                    problems.append(f"could not remove {self._root}")
        self._postmaster_pid = None
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        atexit.unregister(self._at_exit)
        self._torn_down = True
        return problems

    def _at_exit(self) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child inherited the handler; the cluster is its parent's
        try:
            self.stop()
        except (CleanupError, OSError) as exc:  # at exit there is no one left to raise to
            log.warning("%s", exc)


def start_cluster(config: Config | BackendURL | str, **options: Any) -> ThrowawayCluster:
    """Start the throwaway cluster a ``postgresql+proc://`` URL asks for.

    The URL's query may name ``bindir``, ``dir`` (the base directory), ``port`` and any
    server setting (``postgresql+proc://?max_connections=400&shared_buffers=256MB``).
    ``options`` are passed to ``ThrowawayCluster`` and win over the URL's.
    """
    raw = config if isinstance(config, str) else getattr(config, "raw", None) or getattr(config, "url", "")
    parts = urlsplit(str(raw))
    if parts.scheme.lower() != "postgresql+proc":
        raise ConfigError(f"start_cluster() needs a postgresql+proc:// URL, not {parts.scheme + '://'!r}")
    if parts.netloc or parts.path.strip("/"):
        raise ConfigError(
            f"{raw!r}: postgresql+proc:// takes no host, user or database (dbscope chooses them); "
            "options go in the query: postgresql+proc://?bindir=/path/to/bin&dir=/dev/shm&port=5433"
        )
    kwargs: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "bindir":
            kwargs["bindir"] = value
        elif key == "dir":
            kwargs["base_dir"] = value
        elif key == "port":
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ConfigError(f"{raw!r}: port must be a number from 1 to 65535, not {value!r}")
            kwargs["port"] = int(value)
        elif _SETTING_NAME.match(key):
            settings[key] = value
        else:
            raise ConfigError(f"{raw!r}: {key!r} is neither bindir, dir, port nor a PostgreSQL setting name")
    if settings:
        kwargs["settings"] = {**settings, **options.pop("settings", {})}
    kwargs.update(options)
    return ThrowawayCluster(**kwargs).start()


def open_cluster_backend(
    url: Config | BackendURL | str, *, run_id: str, config: Any = None, **options: Any
) -> PostgreSQLBackend:
    """A PostgreSQL backend on a throwaway cluster of its own: closing the backend stops it.

    For ``open_backend()`` when a process uses ``postgresql+proc://`` by itself (the library,
    or pytest without xdist). Under xdist the controller starts one cluster with
    ``start_cluster()`` and workers get its ``postgresql://`` URL instead.
    """
    from .postgresql import PostgreSQLBackend

    cluster = start_cluster(url)
    try:
        return PostgreSQLBackend(
            cluster.url, run_id=run_id, config=config, sweep=False, on_close=cluster.stop, **options
        )
    except BaseException:
        cluster.stop()
        raise


class _ThrowawayClusterType:
    """``postgresql+proc://``: the registry's backend type of a throwaway cluster (see the module docstring)."""

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
        return open_cluster_backend(url, run_id=run_id, config=config)

    @property
    def shares_server(self) -> bool:
        return True  # one cluster for every xdist worker, started by the controller

    def start_shared_server(self, url: BackendURL, *, config: Config) -> ThrowawayCluster:
        return start_cluster(url)

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        return GarbageList(nothing_because="a throwaway cluster (postgresql+proc://) is removed with its run")

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        from .servers import templates_note

        return templates_note(checkup, fingerprint)

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        pass  # on tmpfs, durability off: as fast as PostgreSQL clones get


PROC = _ThrowawayClusterType()
