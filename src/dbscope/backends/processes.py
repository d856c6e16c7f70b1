"""Processes and the directories of throwaway servers: what outlives a run that was killed.

Stdlib only, and importing nothing of dbscope: this file is also the watchdog of a
throwaway server (``python -I -S processes.py --watchdog <directory> <owner pid>``), run
by its path.

A throwaway server (``postgresql+proc://``, ``mysql+proc://``) lives in a directory of
its own, ``<base>/<prefix><owner pid>_<random>/``, which holds ``owner.json``: the owning
process (pid, start time, host) and how to stop the server (:class:`ServerStop`: the
file naming its pid, the words its command line holds, the signal that stops it at
once). Everything that cleans up reads that file, so one copy serves every server:

* :func:`destroy`: stop the server and remove the directory (the owner's ``stop()``);
* :class:`Watchdog`: a tiny process holding a pipe from the owner; when the pipe closes
  without the owner having removed the directory (the owner was killed), it destroys it;
* :func:`clean_stale`: the next start on the machine destroys the directories whose
  owner is dead (by pid and process start time, on the same host); a live owner's, or
  another host's, is never touched.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "OWNER_FILE",
    "ServerState",
    "ServerStop",
    "Watchdog",
    "clean_stale",
    "default_bases",
    "destroy",
    "free_port",
    "make_owned_directory",
    "pid_alive",
    "proc_stat",
    "process_start_time",
    "read_pid",
]

OWNER_FILE = "owner.json"


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (None without /proc or process)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return False
    stat = proc_stat(pid)
    return not (stat and stat[0] in ("Z", "X"))


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    stat = proc_stat(pid)
    try:
        return int(stat[19]) if stat else None
    except (IndexError, ValueError):
        return None


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (polled every few ms); False on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    return True


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_bases() -> list[Path]:
    """Where throwaway servers go by default, best first: tmpfs when writable, else the temp dir."""
    bases = []
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        bases.append(shm)
    bases.append(Path(tempfile.gettempdir()))
    return bases


# -- a throwaway server's directory ---------------------------------------------------------------


class ServerState(enum.Enum):
    """Where a throwaway server is in its life (it cannot be started again once stopped)."""

    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ServerStop:
    """How to stop the server of a throwaway directory at once, written into its owner.json."""

    #: the file naming the server's pid, relative to the directory (``data/postmaster.pid``)
    pidfile: str
    #: a word the server's command line holds: a reused pid is not killed
    names: tuple[str, ...]
    #: the signal that stops it at once (``SIGQUIT``: PostgreSQL's immediate shutdown); SIGKILL follows
    signal: str = "SIGKILL"
    #: seconds to wait after that signal before SIGKILL
    wait_s: float = 10.0

    @classmethod
    def from_owner(cls, directory: Path) -> ServerStop | None:
        try:
            data = json.loads((directory / OWNER_FILE).read_text())["server"]
            return cls(str(data["pidfile"]), tuple(data["names"]), str(data["signal"]), float(data["wait_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _is_server(self, pid: int, directory: Path) -> bool:
        """Whether ``pid`` is this directory's server: one of ``names``, started on a path inside it.

        A reused pid, or another server of the same program (the machine's own), is never killed.
        """
        if not pid_alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True  # no /proc to check against: trust the pid file
        return any(name.encode() in cmdline for name in self.names) and os.fsencode(directory) in cmdline

    def stop(self, directory: Path) -> bool:
        """Stop the server of ``directory`` if one runs; False if it would not die."""
        pid = read_pid(directory / self.pidfile)
        if pid is None or pid <= 0 or not self._is_server(pid, directory):
            return True
        steps = [(getattr(signal, self.signal), self.wait_s), (signal.SIGKILL, 5.0)]
        for sig, wait in steps[1:] if self.signal == "SIGKILL" else steps:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return True
            if wait_gone(pid, wait):
                return True
        return False


def make_owned_directory(prefix: str, base: Path, stop: ServerStop) -> Path:
    """A new ``<base>/<prefix><pid>_<random>`` with its owner.json (this process, and how to stop its server)."""
    pid = os.getpid()
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}{pid}_", dir=base))
    owner = {
        "pid": pid,
        "start_time": process_start_time(pid),
        "host": socket.gethostname(),
        "created": time.time(),
        "server": asdict(stop),
    }
    (root / OWNER_FILE).write_text(json.dumps(owner))
    return root


def destroy(root: Path, stop: ServerStop | None = None) -> bool:
    """Stop the server of a throwaway directory and remove it; True when nothing is left.

    ``stop``: how, when its owner.json does not say (a directory made before it did).
    """
    how = ServerStop.from_owner(root) or stop
    stopped = how.stop(root) if how is not None else True
    shutil.rmtree(root, ignore_errors=True)
    return stopped and not root.exists()


def _owner_is_dead(directory: Path, prefix: str) -> bool:
    match = re.match(rf"^{re.escape(prefix)}(?P<pid>\d+)_", directory.name)
    if not match:
        return False
    pid = int(match["pid"])
    start_time = None
    try:
        owner = json.loads((directory / OWNER_FILE).read_text())
        if owner.get("host") != socket.gethostname():
            return False  # another machine's (shared temp dir): not ours to judge
        start_time = owner.get("start_time")
    except (OSError, ValueError, AttributeError):
        pass  # no owner file yet or any more: judge by the pid in the name
    if pid == os.getpid():
        return False
    if not pid_alive(pid):
        return True
    current = process_start_time(pid)
    return start_time is not None and current is not None and current != start_time


def clean_stale(prefix: str, bases: list[Path], stop: ServerStop | None = None) -> list[tuple[Path, bool]]:
    """Destroy the ``prefix`` directories under ``bases`` whose owner process is dead; (directory, removed) each.

    Directories of live owners, of other hosts and those this user may not remove are left alone.
    """
    done = []
    for base in bases:
        try:
            entries = [p for p in base.iterdir() if p.name.startswith(prefix)]
        except OSError:
            continue
        for directory in entries:
            try:
                if not directory.is_dir() or not _owner_is_dead(directory, prefix):
                    continue
            except OSError:
                continue
            done.append((directory, destroy(directory, stop)))
    return done


class Watchdog:
    """A process that destroys a throwaway directory when its owner dies without having done so.

    It holds the read end of a pipe from the owner, in a session of its own (the
    terminal's Ctrl-C does not reach it); when the pipe closes and the directory is still
    there, owned by the same pid, it destroys it. :meth:`close` is the owner's goodbye.
    """

    def __init__(self, root: Path) -> None:
        read_end, write_end = os.pipe()
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(__file__)), "--watchdog", str(root), str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._pipe: IO[bytes] | None = os.fdopen(write_end, "wb")

    def close(self) -> None:
        """Close the pipe and wait for the watchdog to exit (it finds the directory gone). Idempotent."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def _watchdog_main(root: str, owner_pid: str) -> None:
    """Block until the owner's pipe closes; then clean up whatever the owner did not."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        sys.stdin.buffer.read()
    except OSError:
        pass
    path = Path(root)
    try:
        owner = json.loads((path / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return  # stopped by its owner (directory gone), or not a directory this watchdog knows
    if str(owner.get("pid")) == owner_pid:
        destroy(path)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--watchdog":
        _watchdog_main(sys.argv[2], sys.argv[3])
