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

import glob
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import BackendUnavailableError, ConfigError
from .processes import ServerState as ClusterState
from .processes import ServerStop, clean_stale, default_bases, free_port, read_pid
from .throwaway import ThrowawayProcess, ThrowawayType, query_options

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL
    from .base import Backend

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


class ThrowawayCluster(ThrowawayProcess):
    """A private PostgreSQL server on tmpfs for one session; see the module docstring."""

    what = "PostgreSQL cluster"
    prefix = PREFIX
    server_stop = SERVER_STOP
    log_file = _LOG_FILE

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
        super().__init__(base_dir=base_dir, port=port, start_timeout=start_timeout, watchdog=watchdog)
        self._bindir_option = bindir
        self._settings = {**DEFAULT_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        for name in self._settings:
            if not _SETTING_NAME.match(name):
                raise ConfigError(f"{name!r} is not a PostgreSQL setting name (in the throwaway cluster's settings)")
        self._os_user_option = os_user
        self._bindir: Path | None = None
        self._postmaster_pid: int | None = None
        self._user: _OSUser | None = None

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

    def __repr__(self) -> str:
        if self._state is ClusterState.RUNNING:
            where = f" url={self.url!r}"
        else:
            where = ""
        version = f" version={self._version!r}" if self._version else ""
        directory = f" dir={str(self._root)!r}" if self._root else ""
        return f"<ThrowawayCluster state={self._state.value}{where}{version}{directory}>"

    # -- steps --

    def _prepare(self) -> Path:
        self._bindir = find_bindir(self._bindir_option)
        self._user = _resolve_os_user(self._os_user_option)
        base = self._base_directory()
        if self._user.switch:
            blocked = _reachable_by(base, self._user)
            if blocked:
                raise BackendUnavailableError(
                    f"the throwaway cluster runs as {self._user.name!r}, who cannot enter {blocked!r} (on the "
                    f"way to {str(base)!r}); choose a base directory it can reach, such as /dev/shm or /tmp"
                )
        clean_stale_clusters(self._stale_bases(base))
        return base

    def _own_directory(self, root: Path) -> None:
        assert self._user is not None
        if self._user.switch:
            os.chown(root, self._user.uid, self._user.gid)

    def _launch(self) -> None:
        self._initdb()
        self._start_server()

    def _run(self, args: list[str], what: str, **options: Any) -> subprocess.CompletedProcess[str]:
        assert self._user is not None and self._root is not None
        return super()._run(args, what, cwd=self._root, env=self._user.env(), **self._user.subprocess_options())

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
            log_start = self._log_size()
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

    def _stop_server(self) -> int | None:
        pid, self._postmaster_pid = self._postmaster_pid, None
        return pid


def start_cluster(config: Config | BackendURL | str, **options: Any) -> ThrowawayCluster:
    """Start the throwaway cluster a ``postgresql+proc://`` URL asks for.

    The URL's query may name ``bindir``, ``dir`` (the base directory), ``port`` and any
    server setting (``postgresql+proc://?max_connections=400&shared_buffers=256MB``).
    ``options`` are passed to ``ThrowawayCluster`` and win over the URL's.
    """
    settings: dict[str, str] = {}

    def setting(key: str, value: str) -> bool:
        if _SETTING_NAME.match(key):
            settings[key] = value
            return True
        return False

    kwargs = query_options(
        config,
        ("postgresql+proc",),
        "postgresql+proc://?bindir=/path/to/bin&dir=/dev/shm&port=5433",
        setting,
        "a PostgreSQL setting name",
    )
    if settings:
        kwargs["settings"] = {**settings, **options.pop("settings", {})}
    return ThrowawayCluster(**{**kwargs, **options}).start()


def open_cluster_backend(url: BackendURL | str, *, run_id: str, config: Any = None) -> Backend:
    """A PostgreSQL backend on a throwaway cluster of its own: closing the backend stops it.

    For ``open_backend()`` when a process uses ``postgresql+proc://`` by itself (the library,
    or pytest without xdist). Under xdist the controller starts one cluster with
    ``start_cluster()`` and workers get its ``postgresql://`` URL instead.
    """
    return PROC.open(url, run_id=run_id, config=config)


def _backend(url: str, **options: Any) -> Backend:
    from .postgresql import PostgreSQLBackend

    return PostgreSQLBackend(url, **options)


def _driver_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    return (psycopg.Error,)


#: ``postgresql+proc://``: the registry's backend type of a throwaway cluster (see the module docstring).
PROC = ThrowawayType(scheme="postgresql+proc", start=start_cluster, backend=_backend, driver_errors=_driver_errors)
