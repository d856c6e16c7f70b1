"""What every throwaway server shares: its life, its cleanup, its URL's options, its registry entry.

``postgresql+proc://`` (pg_cluster.py) and ``mysql+proc://`` (mariadb_proc.py) each start
a private server on tmpfs for one session. What differs is how the data directory is made
and how the server is started; the rest is here, once:

* :class:`ThrowawayProcess`: the lifecycle (:class:`ServerState`: new -> running ->
  stopped; never started again once stopped), ``start()`` that leaves nothing behind
  when it fails (a Ctrl-C too), ``stop()`` that is idempotent, ``atexit`` and the
  watchdog (processes.py), the timings, the log tail quoted in errors. A subclass says
  how to find its programs, make its data and start its server (``_prepare``,
  ``_launch``) and what more its teardown stops (``_stop_server``).
* :func:`query_options`: the options a ``+proc://`` URL's query may carry.
* :class:`ThrowawayType`: the backend type the registry names for such a URL: one
  process alone starts a server and opens a backend on it whose ``close()`` stops it;
  under pytest-xdist the controller starts one server for every worker.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self
from urllib.parse import parse_qsl, urlsplit

from ..errors import BackendUnavailableError, CleanupError, ConfigError
from .base import GarbageList
from .hostfs import filesystem_type
from .processes import ServerState, ServerStop, Watchdog, default_bases, destroy, make_owned_directory, pid_alive
from .servers import templates_note

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL
    from .base import Backend, Checkup, GarbageRequest

__all__ = ["ThrowawayProcess", "ThrowawayType", "query_options"]

log = logging.getLogger("dbscope.database")


class ThrowawayProcess:
    """A private database server in a directory of its own; see the module docstring."""

    #: How messages name it: "PostgreSQL cluster", "MariaDB server".
    what: ClassVar[str]
    #: Its directory's name prefix (``dbscope_pgcluster_``), and how it is stopped at once.
    prefix: ClassVar[str]
    server_stop: ClassVar[ServerStop]
    #: The server's log in its directory, whose tail errors quote.
    log_file: ClassVar[str]

    def __init__(
        self, *, base_dir: str | os.PathLike[str] | None, port: int | None, start_timeout: float, watchdog: bool
    ) -> None:
        self._base_option = Path(base_dir) if base_dir is not None else None
        self._port_option = port
        self._start_timeout = start_timeout
        self._use_watchdog = watchdog
        self._lock = threading.RLock()
        self._state = ServerState.NEW
        self._owner_pid = os.getpid()
        self._root: Path | None = None
        self._port: int | None = None
        self._version: str | None = None
        self._watchdog: Watchdog | None = None
        self._timings: dict[str, float] = {}
        self._torn_down = False  # set once _teardown() has run to its end

    # -- properties --

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def directory(self) -> Path | None:
        """The server's own directory (removed by ``stop()``)."""
        return self._root

    @property
    def version(self) -> str | None:
        """The server's version, known once started."""
        return self._version

    @property
    def on_tmpfs(self) -> bool:
        return self._root is not None and filesystem_type(self._root) == "tmpfs"

    @property
    def timings(self) -> dict[str, float]:
        """Milliseconds spent: ``start_ms`` (all), ``server_start_ms``, ``stop_ms`` and the subclass's steps."""
        return dict(self._timings)

    def _running_port(self) -> int:
        if self._state is not ServerState.RUNNING or self._port is None:
            raise BackendUnavailableError(
                f"the throwaway {self.what} is {self._state.value}, not running; "
                + (
                    "call start() or use it as a context manager"
                    if self._state is ServerState.NEW
                    else f"create a new {type(self).__name__}"
                )
            )
        return self._port

    # -- lifecycle --

    def __enter__(self) -> Self:
        if self._state is not ServerState.RUNNING:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Make the server's directory and data, and start it; returns ``self``. Cleans up fully if it fails."""
        with self._lock:
            if self._state is ServerState.RUNNING:
                raise BackendUnavailableError(f"the throwaway {self.what} is already running (port {self._port})")
            if self._state is ServerState.STOPPED:
                raise BackendUnavailableError(
                    f"cannot start a throwaway {self.what} again once it has been stopped; "
                    f"create a new {type(self).__name__}"
                )
            began = time.monotonic()
            base = self._prepare()
            try:
                self._root = make_owned_directory(self.prefix, base, self.server_stop)
                atexit.register(self._at_exit)
                self._own_directory(self._root)
                if self._use_watchdog:
                    self._watchdog = Watchdog(self._root)
                self._launch()
            except BaseException:  # KeyboardInterrupt too: leave nothing behind
                self._state = ServerState.STOPPED
                self._teardown()
                raise
            self._state = ServerState.RUNNING
            self._timings["start_ms"] = (time.monotonic() - began) * 1000
            log.debug("started %r in %.0f ms", self, self._timings["start_ms"])
            return self

    def stop(self) -> None:
        """Stop the server at once and remove its directory. Idempotent."""
        with self._lock:
            if self._state is ServerState.NEW:
                self._state = ServerState.STOPPED
                return
            self._state = ServerState.STOPPED
            if self._torn_down:
                return
            began = time.monotonic()
            problems = self._teardown()
            self._timings["stop_ms"] = (time.monotonic() - began) * 1000
            log.debug("stopped the throwaway %s in %.0f ms", self.what, self._timings["stop_ms"])
            if problems:
                raise CleanupError(f"stopping the throwaway {self.what}: {'; '.join(problems)}")

    # -- what a subclass says --

    def _prepare(self) -> Path:
        """Find the programs, remove what dead runs left; return the base directory to make the server's in."""
        raise NotImplementedError

    def _own_directory(self, root: Path) -> None:
        """Hand the new directory to whoever runs the server (nothing to do when that is this user)."""

    def _launch(self) -> None:
        """Make the data directory and start the server on a port (``self._port``), ready for connections."""
        raise NotImplementedError

    def _stop_server(self) -> int | None:
        """After the directory's server was stopped and removed: stop what else runs; the pid it had."""
        return None

    # -- shared steps --

    def _base_directory(self) -> Path:
        base = self._base_option or default_bases()[0]
        if not base.is_dir():
            raise BackendUnavailableError(
                f"the base directory {str(base)!r} for the throwaway {self.what} does not exist"
            )
        return base

    def _stale_bases(self, base: Path) -> list[Path]:
        """Where dead runs' servers may be: only the base given, or every default one."""
        return [base] if self._base_option else default_bases()

    def _run(self, args: list[str], what: str, **options: Any) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs to its end; a timeout or a missing program is a clear error."""
        timeout = self._start_timeout + 30
        try:
            return subprocess.run(
                args,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                **options,
            )
        except subprocess.TimeoutExpired:
            raise BackendUnavailableError(
                f"{what} did not finish within {timeout:.0f} s (throwaway {self.what} in {self._root})"
            ) from None
        except OSError as exc:
            raise BackendUnavailableError(f"could not run {what} ({args[0]}): {exc}") from exc

    def _log_size(self) -> int:
        path = self._root / self.log_file if self._root else None
        return path.stat().st_size if path is not None and path.exists() else 0

    def _read_log(self, offset: int) -> str:
        """The server's log from ``offset`` on ("" when there is none)."""
        if self._root is None:
            return ""
        try:
            with open(self._root / self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _teardown(self) -> list[str]:
        """Stop the server, remove the directory, end the watchdog; return what failed."""
        problems = []
        if self._root is not None and not destroy(self._root, self.server_stop):
            pid = self._stop_server()
            if pid is not None and pid_alive(pid):
                problems.append(f"the server (pid {pid}) would not exit")
            if self._root.exists():
                problems.append(f"could not remove {self._root}")
        else:
            self._stop_server()
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        atexit.unregister(self._at_exit)
        self._torn_down = True
        return problems

    def _at_exit(self) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child inherited the handler; the server is its parent's
        try:
            self.stop()
        except (CleanupError, OSError) as exc:  # at exit there is no one left to raise to
            log.warning("%s", exc)


def query_options(
    url: Config | BackendURL | str,
    schemes: tuple[str, ...],
    example: str,
    more: Callable[[str, str], bool] | None = None,
    more_names: str = "",
) -> dict[str, Any]:
    """The keyword options of a ``+proc://`` URL's query: ``bindir``, ``dir`` (``base_dir``), ``port``.

    ``more(key, value)`` takes a key of the server's own (True when taken; ``more_names``
    says which in errors); any other key, a host, a user or a database is a usage error
    that shows ``example``.
    """
    raw = str(url if isinstance(url, str) else getattr(url, "raw", None) or getattr(url, "url", ""))
    parts = urlsplit(raw)
    if parts.scheme.lower() not in schemes:
        raise ConfigError(f"a throwaway server needs a {schemes[0]}:// URL, not {parts.scheme + '://'!r}")
    if parts.netloc or parts.path.strip("/"):
        raise ConfigError(
            f"{raw!r}: {schemes[0]}:// takes no host, user or database (dbscope chooses them); "
            f"options go in the query: {example}"
        )
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "bindir":
            options["bindir"] = value
        elif key == "dir":
            options["base_dir"] = value
        elif key == "port":
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ConfigError(f"{raw!r}: port must be a number from 1 to 65535, not {value!r}")
            options["port"] = int(value)
        elif more is None or not more(key, value):
            names = f"neither bindir, dir, port nor {more_names}" if more_names else "none of bindir, dir and port"
            raise ConfigError(f"{raw!r}: {key!r} is {names}")
    return options


class RunningServer(Protocol):
    """What the registry's type needs of a started server."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


class ThrowawayType:
    """The registry's backend type of a throwaway server (``postgresql+proc://``, ``mysql+proc://``)."""

    def __init__(
        self,
        *,
        scheme: str,
        start: Callable[[BackendURL | str], RunningServer],
        backend: Callable[..., Backend],
        driver_errors: Callable[[], tuple[type[BaseException], ...]],
    ) -> None:
        self._scheme = scheme
        self._start = start
        self._backend = backend
        self._driver_errors = driver_errors

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return self._driver_errors()

    def open(self, url: BackendURL | str, *, run_id: str, config: Config | None = None) -> Backend:
        """A backend on a server of its own (one process alone: the library, or pytest without xdist)."""
        server = self._start(url)
        try:
            return self._backend(server.url, run_id=run_id, config=config, sweep=False, on_close=server.stop)
        except BaseException:
            server.stop()
            raise

    @property
    def shares_server(self) -> bool:
        return True  # one server for every xdist worker, started by the controller

    def start_shared_server(self, url: BackendURL, *, config: Config) -> RunningServer:
        return self._start(url)

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        return GarbageList(nothing_because=f"a throwaway server ({self._scheme}://) is removed with its run")

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        return templates_note(checkup, fingerprint)

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        pass  # on tmpfs, durability off: as fast as its clones get
