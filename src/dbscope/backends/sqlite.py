"""SQLite backend: per-scope databases in memory (the default) or in files.

Every database is in WAL mode, so that a connection reading while another holds an open
write transaction reads the last committed rows at once (never the uncommitted ones)
instead of waiting for the writer and failing with "database is locked". A named
in-memory database (``file:/<name>?vfs=memdb``) cannot do that: memdb locks the whole
database for a writer and has no WAL. benchmarks/bench_sqlite_readers.py measured the
ways to give readers the committed state: a copy of a WAL template file on tmpfs is the
cheapest that holds for every transaction (a rollback-journal file blocks readers once a
writer's changes outgrow its page cache); WAL is set once in the template, not per copy.

"In memory" (``sqlite://``) is therefore memory-backed files: the template is migrated
once per process in a private memdb database, and written to a WAL file in a private
per-run directory on tmpfs (/dev/shm; the temp directory where there is none); each
scope gets a copy of that file, kept open by dbscope's anchor connection, and other
connections of the process (threads, SQLAlchemy engines, aiosqlite) open it by path.
That path goes through ``/proc/self/fd/<n>`` (see DirectoryAlias), so a worker's
database has one URL string on every xdist worker and in every run.
The directory is removed when the backend closes, and by the next run on the host
if the process was killed (its owner file names a dead process).

In files (``sqlite:///dir``, ``sqlite+file://``), the template is a file built atomically
(temporary name, then rename) and kept under its fingerprint, so later runs and other
processes reuse it; each scope gets a copy of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import BackendUnavailableError, ConfigError, MigrationError
from ..migrations import MigrationSet, combined_fingerprint
from ..urls import FILE_PARTS, URL_PARTS, no_part
from .base import BuildEnvironment, Look
from .processes import pid_alive

__all__ = ["SQLiteBackend", "SQLiteDialect"]

log = logging.getLogger("dbscope.database")

PREFIX = "dbscope_"
_APPLICATION_ID = 0x64627363  # "dbsc": gives an empty template a header page


RESTORE_TIMEOUT_S = 5.0
PROGRESS_STEPS = 10_000  # SQLite VM steps between two chances for a pending signal handler to run


def _signal_catcher(caught: list[BaseException]) -> Iterator[bool]:
    """Resumed by SQLite's progress handler: True (abort the statement) once a signal handler raised.

    A generator, because resuming one runs pending signal handlers at the ``yield``,
    inside the ``try``; a plain function runs them before its first line, where the
    exception could not be caught and sqlite3 would swallow it.
    """
    while True:
        try:
            yield bool(caught)
        except GeneratorExit:
            raise
        except BaseException as exc:  # KeyboardInterrupt, pytest-timeout's Failed: the client raises it
            caught.append(exc)


class SignalGuard:
    """Lets Ctrl-C and pytest-timeout's signal method stop a long SQLite statement.

    While sqlite3 runs a statement the main thread is in C, and Python signal handlers
    wait until it returns: a runaway query ignores SIGINT and SIGALRM. Armed around a
    statement, a progress handler gives pending handlers a chance to run every
    ``PROGRESS_STEPS`` steps; if one raised, the statement is aborted and
    :meth:`reraise` raises the handler's exception instead of "interrupted".
    """

    def __init__(self) -> None:
        self._caught: list[BaseException] = []
        catcher = _signal_catcher(self._caught)
        next(catcher)
        self._progress = catcher.__next__

    def arm(self, conn: Any) -> None:
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)

    def disarm(self, conn: Any) -> None:
        try:
            conn.set_progress_handler(None, 0)
        except sqlite3.ProgrammingError:  # closed meanwhile by its scope's end
            pass

    def reraise(self) -> None:
        """Raise what a signal handler raised during the statement, if anything."""
        if self._caught:
            exc = self._caught.pop()
            self._caught.clear()
            raise exc


class SQLiteDialect:
    """SQLite takes ``?`` and ``:name`` placeholders as they are."""

    name = "sqlite"

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        return sql, args

    def begin(self) -> str:
        return "BEGIN"

    def signal_guard(self) -> SignalGuard:
        """A client's guard that lets signals stop its long statements."""
        return SignalGuard()


DIALECT = SQLiteDialect()


class ConnectionWatch:
    """Which sqlite3 connections of this process are open on each of dbscope's databases.

    SQLite cannot list the connections to a database, so this watch learns of every
    ``sqlite3.connect()`` through Python's audit events (``sqlite3.connect`` names the
    database, ``sqlite3.connect/handle`` hands over the connection, in the same thread)
    and keeps the connections opened to a watched database: an app's engine, a raw
    connection kept in a global, aiosqlite's connection in its thread. dbscope's own
    connections are not kept. An audit hook cannot be removed, so there is one watch per
    process, installed the first time a database is watched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[str, list[sqlite3.Connection]] = {}
        self._pending = threading.local()
        self._installed = False
        # references a connection has from sqlite3 itself, plus one holder and getrefcount's argument
        probe = sqlite3.connect(":memory:")
        self._held_once = sys.getrefcount(probe)
        probe.close()

    @staticmethod
    def key(target: Any) -> str:
        """The database a connect() argument names: a memdb name or an absolute file path."""
        text = os.fsdecode(target) if isinstance(target, (bytes, os.PathLike)) else str(target)
        if text.startswith("file:"):
            text = unquote(text[5:].split("?", 1)[0].split("#", 1)[0])
            if text.startswith("//"):  # file://host/path: the authority is empty or localhost
                text = "/" + text[2:].partition("/")[2]
            return text
        # the real path: sqlite:// hands its databases out through /proc/self/fd (see DirectoryAlias)
        return os.path.realpath(text) if text and text != ":memory:" else text

    def watch(self, key: str) -> None:
        with self._lock:
            if not self._installed:
                sys.addaudithook(self._hook)
                self._installed = True
            self._watched.setdefault(key, [])

    def unwatch(self, key: str) -> None:
        with self._lock:
            self._watched.pop(key, None)

    def forget(self, conn: sqlite3.Connection) -> None:
        """``conn`` is dbscope's own: never count it."""
        with self._lock:
            for connections in self._watched.values():
                for i, known in enumerate(connections):
                    if known is conn:
                        del connections[i]
                        return

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "sqlite3.connect":
            self._pending.key = self.key(args[0]) if args else None
        elif event == "sqlite3.connect/handle":
            key, self._pending.key = getattr(self._pending, "key", None), None
            if key is not None and key in self._watched:
                with self._lock:
                    connections = self._watched.get(key)
                    if connections is not None:
                        connections.append(args[0])

    def open_connections(self, key: str) -> dict[Hashable, sqlite3.Connection]:
        """The connections to ``key`` still open; closed ones and ones nobody else holds are let go."""
        with self._lock:
            connections = self._watched.get(key, [])
            alive: list[sqlite3.Connection] = []
            for i in range(len(connections)):
                conn = connections[i]
                # held by the list slot and this variable (one more than once): nobody else has it,
                # and the garbage collector closes it; it is no one's open connection
                if _is_closed(conn) or sys.getrefcount(conn) <= self._held_once + 1:
                    continue
                alive.append(conn)
            connections[:] = alive
            return {id(conn): conn for conn in alive}


def _is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return True
    return False


WATCH = ConnectionWatch()


def _data_version(conn: sqlite3.Connection) -> int:
    """PRAGMA data_version: changes when another connection commits to the database."""
    cursor = conn.execute("PRAGMA data_version")
    try:
        return int(cursor.fetchall()[0][0])  # fetch to the end: an active statement would lock backup()
    finally:
        cursor.close()


class _SQLiteDatabase:
    """What in-memory and file databases share: the strategies' questions, answered for SQLite."""

    dialect: Any = DIALECT
    name: str
    _key: str

    def connect(self, *, autocommit: bool = False) -> sqlite3.Connection:
        raise NotImplementedError

    def restore(self, template: Any, *, timeout: float = RESTORE_TIMEOUT_S) -> None:
        raise NotImplementedError

    def foreign_connections(self, known: Collection[Hashable] | None = ()) -> Mapping[Hashable, bool]:
        return {key: conn.in_transaction for key, conn in WATCH.open_connections(self._key).items()}

    def end_transactions(self, keys: Iterable[Hashable]) -> str:
        wanted = set(keys)
        outcomes = []
        for key, conn in WATCH.open_connections(self._key).items():
            if key not in wanted:
                continue
            try:
                conn.rollback()
                outcomes.append("rolled back")
            except sqlite3.Error as exc:  # another thread's connection (check_same_thread)
                outcomes.append(f"could not roll it back: {exc}")
        return "; ".join(outcomes) or "none found"

    def recreate(self, template: Any) -> None:
        self.restore(template)  # a restore copies the template's pages: its schema too

    def schema_signature(self) -> str | None:
        return None

    def watch_writes(self) -> None:
        pass

    def write_mark(self, conn: Any) -> Any:
        return _data_version(conn)

    def look(self, conn: Any, mark: Any, *, known: Collection[Hashable] | None = ()) -> Look:
        """Each question on its own: in one process they cost microseconds, not round trips."""
        version = _data_version(conn)
        return Look(
            signature=self.schema_signature(),
            written="changes" if version != mark else None,
            mark=version,
            connections=self.foreign_connections(known),
        )

    def after_rollback(self, template: Any) -> None:
        pass

    def in_transaction(self, conn: Any) -> bool:
        return bool(conn.in_transaction)

    def is_closed(self, conn: Any) -> bool:
        return _is_closed(conn)

    def execute(self, conn: Any, statement: str) -> None:
        conn.execute(statement).close()


#: Where ``keep()`` saves a failed test's database, below the current directory: the next
#: run removes a finished run's own files, and memory dies with the process.
KEPT_DIRECTORY = Path(".dbscope") / "failed"


def save_kept(source: sqlite3.Connection | None, name: str) -> str:
    """Copy ``source``'s database to ``.dbscope/failed/<name>.sqlite3``; return the path, as ``sqlite3`` opens it."""
    directory = Path.cwd() / KEPT_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.sqlite3"
    target = sqlite3.connect(str(path))
    try:
        if source is not None:
            source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE").close()  # one file, as tools expect; no -wal beside it
    finally:
        target.close()
    return str(path)


def _open(target: str, *, uri: bool, autocommit: bool) -> sqlite3.Connection:
    isolation: Any = None if autocommit else ""  # "": sqlite3's default, implicit transactions
    conn = sqlite3.connect(target, uri=uri, check_same_thread=False, isolation_level=isolation)
    WATCH.forget(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _build(
    conn: sqlite3.Connection,
    migrations: MigrationSet,
    seed: MigrationSet,
    target: str,
    environment: BuildEnvironment | None,
) -> None:
    """Migrate and seed the database ``conn`` is open on: ``target``, a memdb URI or a file path."""
    dsn = target if target.startswith("file:") else str(Path(target))
    uri = "&uri=true" if target.startswith("file:") else ""

    def address(fmt: str) -> str:  # the database being built, as the app's variables take it
        if fmt == "dsn" or (fmt in FILE_PARTS and not uri):
            return dsn
        if fmt in URL_PARTS:
            raise ConfigError(f"a SQLite template being built has {no_part(fmt, () if uri else FILE_PARTS)}")
        return f"{'sqlite+aiosqlite' if fmt == 'async' else 'sqlite'}:///{dsn}{uri}"

    url = address("sqlalchemy")
    env = environment(address) if environment is not None else None
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.apply(conn, url, environment=env)
    seed.apply(conn, url, environment=env)
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
    conn.commit()


def _bounded_backup(source: sqlite3.Connection, target: sqlite3.Connection, name: str, timeout: float) -> None:
    """``source.backup(target)``, giving up after ``timeout`` s while ``target`` stays locked.

    sqlite3's backup() retries a locked destination forever; a progress callback that
    raises is the one way to stop it.
    """
    deadline = time.monotonic() + timeout

    def progress(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"cannot restore {name} from the template: another connection has kept it locked for "
                f"{timeout:g} s (a transaction left open by the app under test?); commit or roll back "
                "before the test ends"
            )

    try:
        source.backup(target, progress=progress, sleep=0.005)
    except sqlite3.OperationalError as exc:
        raise BackendUnavailableError(
            f"cannot restore {name} from the template: {exc} (a connection with a transaction or an "
            "unfinished statement on it?); commit or roll back before the test ends"
        ) from exc


def _is_wal(path: Path) -> bool:
    """Whether the database file at ``path`` is in WAL mode (bytes 18 and 19 of its header are 2)."""
    with open(path, "rb") as file:
        return file.read(20)[18:20] == b"\x02\x02"


def _set_wal(conn: sqlite3.Connection) -> None:
    """Put ``conn``'s database in WAL mode: readers read the last commit while a writer holds a transaction."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise BackendUnavailableError(f"SQLite refused WAL mode (journal mode {mode!r}) for a dbscope database")


#: a database file and the companions SQLite makes beside it
_COMPANIONS = ("", "-journal", "-wal", "-shm")


def _delete_database_files(path: Path) -> None:
    for suffix in _COMPANIONS:
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def _skip_checkpoint_on_close(conn: sqlite3.Connection) -> None:
    """Where Python can say so (3.12+): closing ``conn`` last does not checkpoint a WAL about to be deleted."""
    option = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
    setconfig = getattr(conn, "setconfig", None)
    if option is not None and setconfig is not None:
        setconfig(option, True)


def _copy_new(source: Path, target: Path) -> None:
    """Copy ``source`` into a new file ``target``; never over an existing file, never leave a partial copy."""
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            if hasattr(os, "sendfile") and sys.platform.startswith("linux"):  # in the kernel: no copy through Python
                size, offset = os.fstat(src.fileno()).st_size, 0
                while offset < size:
                    sent = os.sendfile(dst.fileno(), src.fileno(), offset, size - offset)
                    if sent == 0:
                        break
                    offset += sent
            else:
                shutil.copyfileobj(src, dst)
    except FileExistsError:
        raise
    except BaseException:
        target.unlink(missing_ok=True)  # a partial copy (the disk filled up) is no database: leave none
        raise


@dataclass
class MemoryTemplate:
    fingerprint: str
    connection: sqlite3.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the template written to a WAL file in the backend's directory, which each scope copies
    path: Path | None = None


@dataclass
class FileTemplate:
    fingerprint: str
    path: Path
    #: a template cached in WAL mode; one cached by an older dbscope is not, and each copy is set to WAL
    wal: bool = True


class SQLiteMemoryDatabase(_SQLiteDatabase):
    """A scope's database of ``sqlite://``: a WAL file on tmpfs, copied from the template's, kept open by an anchor.

    The anchor is dbscope's connection: the first client of a clone borrows it, the
    rollback strategy holds each test's transaction on it, restores write through it.
    Held open all along, it also keeps the WAL and its index mapped for the other
    connections (the last connection to close a WAL database checkpoints it).
    """

    def __init__(self, path: Path, template: MemoryTemplate, alias: str | None = None) -> None:
        assert template.path is not None, "a template of sqlite:// has a file"
        self.name = path.stem
        self.path = path
        self._uri = str(path)
        # the backend's directory is resolved and the file is its own: the path is its real path
        # (what ConnectionWatch.key() gives an app's connection), with no realpath() a clone
        self._key = self._uri
        self._alias = alias
        self._baseline: sqlite3.Connection | None = None  # the latest capture()
        # after a restore: from which template, and PRAGMA data_version then on the watcher, a
        # connection of dbscope's that never writes, so that it sees every other connection's commits
        self._watcher: sqlite3.Connection | None = None
        self._restored_from: Any = None
        self._restored_version = 0
        _copy_new(template.path, path)  # FileExistsError: the name is another process's
        WATCH.watch(self._key)
        try:
            self._anchor: sqlite3.Connection | None = _open(self._uri, uri=False, autocommit=True)
        except BaseException:
            self._delete_files()
            raise
        _skip_checkpoint_on_close(self._anchor)

    def url(self, fmt: str = "sqlalchemy") -> str:
        # what the app is given: through the alias, the same string in every process and run
        path = f"{self._alias}/{self.path.name}" if self._alias else self._uri
        if fmt == "dsn":
            return path
        # no NAME:path: while migrations run, the template is a memdb database, which has none
        if fmt in URL_PARTS:
            raise ConfigError(f"{self.name} is a database of SQLite in memory, which has {no_part(fmt, ())}")
        driver = "sqlite+aiosqlite" if fmt == "async" else "sqlite"
        return f"{driver}:///{path}"

    def connect(self, *, autocommit: bool = False) -> sqlite3.Connection:
        return _open(self._uri, uri=False, autocommit=autocommit)

    def primary_connection(self) -> sqlite3.Connection | None:
        return self._anchor

    def restore(self, template: Any, *, timeout: float = RESTORE_TIMEOUT_S) -> None:
        if self._anchor is None:
            raise BackendUnavailableError(f"database {self.name} was already released")
        if self._holds_already(template):
            return
        with template.lock:
            _bounded_backup(template.connection, self._anchor, self.name, timeout)
        if self._watcher is None:
            self._watcher = _open(self._uri, uri=False, autocommit=True)
            self._watcher.execute("PRAGMA busy_timeout = 0").close()
        self._restored_from = template
        self._restored_version = _data_version(self._watcher)

    def _holds_already(self, template: Any) -> bool:
        """Whether the database holds ``template``'s contents: restored from it, no commit since, no writer now.

        A restore writes every page into the WAL (twice the memdb's cost, measured by
        benchmarks/bench_sqlite_readers.py); after a test that wrote nothing, it is skipped.
        """
        watcher = self._watcher
        if watcher is None or self._restored_from is not template or _data_version(watcher) != self._restored_version:
            return False
        try:  # a transaction left open (in a thread dbscope cannot roll back): the backup waits, then says so
            watcher.execute("BEGIN IMMEDIATE").close()
        except sqlite3.OperationalError:
            return False
        watcher.execute("ROLLBACK").close()
        return True

    def capture(self, template: Any) -> MemoryTemplate:
        """This database's contents now, in a private in-memory copy that ``restore()`` takes."""
        if self._anchor is None:
            raise BackendUnavailableError(f"database {self.name} was already released")
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        self._anchor.backup(copy)
        previous, self._baseline = self._baseline, copy
        if previous is not None:
            previous.close()
        return MemoryTemplate(template.fingerprint, copy)

    def keep(self) -> str:
        """Save a copy to .dbscope/failed/ (this one goes with the run); return its path, as sqlite3 opens it."""
        path = save_kept(self._anchor, self.name)
        self.release()
        self._delete_files()  # still watched: the leak probe of the kept test follows
        return path

    def release(self) -> None:
        anchor, self._anchor = self._anchor, None
        if anchor is not None:
            anchor.close()
        watcher, self._watcher, self._restored_from = self._watcher, None, None
        if watcher is not None:
            watcher.close()
        baseline, self._baseline = self._baseline, None
        if baseline is not None:
            baseline.close()

    def drop(self) -> None:
        self.release()
        WATCH.unwatch(self._key)
        self._delete_files()

    def _delete_files(self) -> None:
        if not self.path.name.startswith(PREFIX):
            raise BackendUnavailableError(f"refusing to delete {self.path}: dbscope did not create it")
        _delete_database_files(self.path)

    def __repr__(self) -> str:
        return f"<SQLiteMemoryDatabase {self.path}>"


class SQLiteFileDatabase(_SQLiteDatabase):
    """A scope's database file, copied from the template file."""

    def __init__(self, path: Path, template: FileTemplate) -> None:
        self.name = path.stem
        self.path = path
        self._key = os.path.realpath(path)
        _copy_new(template.path, path)  # FileExistsError: the name is another process's
        WATCH.watch(self._key)
        if not template.wal:  # a template an older dbscope cached: readers would wait for writers
            try:
                conn = sqlite3.connect(str(path))
                try:
                    _set_wal(conn)
                finally:
                    conn.close()
            except BaseException:
                _delete_database_files(path)
                raise

    def url(self, fmt: str = "sqlalchemy") -> str:
        if fmt in ("dsn", *FILE_PARTS):
            return str(self.path)
        if fmt in URL_PARTS:
            raise ConfigError(f"{self.name} is a database of SQLite files, which has {no_part(fmt, FILE_PARTS)}")
        driver = "sqlite+aiosqlite" if fmt == "async" else "sqlite"
        return f"{driver}:///{self.path}"

    def connect(self, *, autocommit: bool = False) -> sqlite3.Connection:
        return _open(str(self.path), uri=False, autocommit=autocommit)

    def restore(self, template: Any, *, timeout: float = RESTORE_TIMEOUT_S) -> None:
        source = sqlite3.connect(str(template.path))
        target = sqlite3.connect(str(self.path))
        try:
            _bounded_backup(source, target, self.name, timeout)
        finally:
            source.close()
            target.close()

    def capture(self, template: Any) -> FileTemplate:
        """This database's contents now, in a file beside it (removed with it) that ``restore()`` takes."""
        path = self.path.parent / f"{self.name}.baseline"
        source = sqlite3.connect(str(self.path))
        target = sqlite3.connect(str(path))
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return FileTemplate(template.fingerprint, path)

    def primary_connection(self) -> None:
        return None

    def keep(self) -> str:
        """Save a copy to .dbscope/failed/ (the next run removes this run's files); return its path."""
        source = _open(str(self.path), uri=False, autocommit=True)
        try:
            return save_kept(source, self.name)
        finally:
            source.close()

    def release(self) -> None:
        pass

    def drop(self) -> None:
        if not self.path.name.startswith(PREFIX):
            raise BackendUnavailableError(f"refusing to delete {self.path}: dbscope did not create it")
        WATCH.unwatch(self._key)
        Path(self.path.parent / f"{self.name}.baseline").unlink(missing_ok=True)
        _delete_database_files(self.path)

    def __repr__(self) -> str:
        return f"<SQLiteFileDatabase {self.path}>"


def write_owner_file(directory: Path, run_id: str) -> Path:
    """``dbscope_<run>.owner``: which process on which host owns the run's files."""
    path = directory / f"{PREFIX}{run_id}.owner"
    path.write_text(json.dumps({"run": run_id, "host": socket.gethostname(), "pid": os.getpid()}))
    return path


def sweep_dead_runs(directory: Path) -> list[str]:
    """Delete the files of runs on this host whose process is gone (a killed worker's).

    Only files named after such a run (``dbscope_<run>_*``) and its owner file, and
    unfinished template builds of dead processes; never a live run's, never a template.
    """
    removed: list[str] = []
    for owner in directory.glob(f"{PREFIX}*.owner"):
        run = _dead_run(owner)
        if run is None:
            continue
        for leftover in directory.glob(f"{PREFIX}{run}_*"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover.name)
        owner.unlink(missing_ok=True)
    for building in directory.glob(f"{PREFIX}tpl_*.building"):
        parts = building.name.split(".")
        if len(parts) >= 4 and parts[-3].isdigit() and not pid_alive(int(parts[-3])):
            building.unlink(missing_ok=True)
            removed.append(building.name)
    if removed:
        log.info("removed %d file(s) left by runs whose process is gone: %s", len(removed), ", ".join(removed))
    return removed


@dataclass(frozen=True)
class RunOwner:
    """What an owner file says: which run, on which host, in which process."""

    run: str
    host: str
    pid: int

    @classmethod
    def read(cls, owner: Path) -> RunOwner | None:
        """The owner file's record; None if it cannot be read or is not dbscope's."""
        try:
            info = json.loads(owner.read_text())
            found = cls(str(info["run"]), str(info.get("host")), int(info["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found if found.run.isalnum() else None

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()

    @property
    def gone(self) -> bool:
        """It ran on this host and its process is gone (another host's processes cannot be checked)."""
        return self.here and not pid_alive(self.pid)


def _dead_run(owner: Path) -> str | None:
    """The run an owner file names, if it ran on this host and its process is gone; else None."""
    found = RunOwner.read(owner)
    return found.run if found is not None and found.gone else None


def sweep_dead_run_directories(base: Path) -> list[str]:
    """Delete the private directories (``dbscope_*`` in ``base``) of runs on this host whose process is gone.

    A run's private directory holds its owner file; one without any (being set up, or not
    dbscope's) and one whose owner is alive or on another host are left alone.
    """
    removed: list[str] = []
    try:
        candidates = [path for path in base.glob(f"{PREFIX}*") if path.is_dir() and not path.is_symlink()]
    except OSError:
        return removed
    for directory in candidates:
        try:
            owners = list(directory.glob(f"{PREFIX}*.owner"))
        except OSError:  # another user's
            continue
        if owners and all(_dead_run(owner) is not None for owner in owners):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(str(directory))
    if removed:
        log.info("removed %d directorie(s) left by runs whose process is gone: %s", len(removed), ", ".join(removed))
    return removed


class TemplateCache:
    """Built ``sqlite://`` templates kept between runs, by fingerprint, in the project's ``.dbscope/cache``.

    Each is the template's image (``serialize()``) after a header and its sha256: a file
    that was cut short or changed is noticed, removed and built again, never used. A
    lock file per fingerprint makes one process build it while the others wait and load
    it (xdist workers starting together). The directory gets a ``.gitignore`` of ``*``.
    """

    MAGIC = b"dbscope sqlite template 1\n"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, fingerprint: str) -> Path:
        return self.directory / f"{PREFIX}tpl_{fingerprint}.image"

    @contextlib.contextmanager
    def locked(self, fingerprint: str) -> Iterator[None]:
        """Held while one process looks for, or builds, the image of ``fingerprint``."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory.parent / ".gitignore"
            if self.directory.parent.name == ".dbscope" and not ignore.exists():
                ignore.write_text("# made by dbscope: nothing here belongs in version control\n*\n")
            lock = open(self.directory / f"{PREFIX}tpl_{fingerprint}.lock", "a+b")  # held across the yield
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as exc:
            raise self._unusable(exc) from exc
        try:
            yield
        finally:
            lock.close()  # releases the lock

    def _unusable(self, exc: OSError) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot use the template cache {self.directory}: {exc.strerror or exc}; make it writable, or remove it "
            "(it is rebuilt when missing)"
        )

    def load(self, fingerprint: str) -> bytes | None:
        """The cached image of ``fingerprint``; None when there is none or it is not intact (then removed)."""
        path = self.path(fingerprint)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(exc) from exc
        head, digest, image = (
            data[: len(self.MAGIC)],
            data[len(self.MAGIC) : len(self.MAGIC) + 64],
            data[len(self.MAGIC) + 65 :],
        )
        if head != self.MAGIC or hashlib.sha256(image).hexdigest().encode() != digest:
            log.warning("dbscope: the cached template %s is damaged; building it again", path)
            path.unlink(missing_ok=True)
            return None
        return image

    def store(self, fingerprint: str, image: bytes) -> None:
        """Write the image atomically (a temporary name, then a rename): no one reads half of one."""
        path = self.path(fingerprint)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        try:
            partial.write_bytes(self.MAGIC + hashlib.sha256(image).hexdigest().encode() + b"\n" + image)
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise self._unusable(exc) from exc


#: the lowest file descriptor a DirectoryAlias takes: high enough to be free in any process
ALIAS_FD = 1000


class DirectoryAlias:
    """``/proc/self/fd/<n>``: the run's private directory under a name that is the same in every process.

    The directory is opened and its descriptor moved to the lowest free number from
    :data:`ALIAS_FD` up (1000 in any process that has fewer descriptors open), so a
    worker's database URL reads the same on every xdist worker and in every run, while
    each process reaches its own files: a suite parametrized by its URL collects the same
    test ids everywhere. The descriptor is not inherited by programs the tests start (they
    could not reach the process's databases anyway); it is closed with the backend.
    Where /proc/self/fd does not exist, or no descriptor from :data:`ALIAS_FD` up is
    allowed, there is no alias and URLs name the directory itself.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.path = f"/proc/self/fd/{fd}"

    @classmethod
    def open(cls, directory: Path) -> DirectoryAlias | None:
        if not os.path.isdir("/proc/self/fd"):
            return None
        opened = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = fcntl.fcntl(opened, fcntl.F_DUPFD_CLOEXEC, ALIAS_FD)
        except OSError as exc:  # EINVAL: the descriptor limit is below ALIAS_FD
            log.debug("no alias for %s (%s): its databases' URLs name it", directory, exc)
            return None
        finally:
            os.close(opened)
        alias = cls(fd)
        if os.path.realpath(alias.path) != os.path.realpath(directory):  # a /proc that is not this process's
            alias.close()
            return None
        return alias

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def private_directory() -> Path:
    """A new private directory for a run's databases: on tmpfs (/dev/shm) if writable, else in the temp dir.

    Directories that runs killed earlier left there are removed first.
    """
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    sweep_dead_run_directories(base)
    return Path(tempfile.mkdtemp(prefix=PREFIX, dir=base)).resolve()


class SQLiteBackend:
    """Templates and per-scope databases for ``sqlite://`` and ``sqlite:///dir``."""

    dialect = DIALECT
    #: a clone is made by this process (a file copy and a connect): its pool clones ahead only
    #: while the tests leave it idle time (see dbscope.pool)
    clones_in_process = True

    def __init__(
        self,
        *,
        directory: str | None = None,
        in_memory: bool = True,
        run_id: str | None = None,
        cache: TemplateCache | None = None,
    ) -> None:
        self.in_memory = in_memory
        self.cache = cache if in_memory else None  # files keep their templates in their directory
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self._templates: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._own_directory = False
        self._owner_file: Path | None = None
        self.directory: Path | None = None
        self.alias: DirectoryAlias | None = None
        if in_memory or directory is None:  # sqlite://, sqlite+file://: a private directory, removed by close()
            try:
                self.directory = private_directory()
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot create a private directory for the SQLite databases: {exc}; "
                    "free some space in /dev/shm or the temp directory (TMPDIR)"
                ) from exc
            self._own_directory = True
            if in_memory:  # the URLs apps are given; sqlite+file:// is for other processes, which need real paths
                self.alias = DirectoryAlias.open(self.directory)
        else:
            self.directory = Path(directory).resolve()
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot create the SQLite directory {self.directory}: {exc.strerror}; "
                    "point dbscope_url at a writable directory (sqlite:///path/to/dir)"
                ) from exc
            sweep_dead_runs(self.directory)
        self._owner_file = write_owner_file(self.directory, self.run_id)

    def template(
        self,
        migrations: MigrationSet,
        seed: MigrationSet,
        *,
        rebuild: bool = False,
        environment: BuildEnvironment | None = None,
    ) -> Any:
        fingerprint = combined_fingerprint(migrations, seed)
        with self._lock:
            cached = self._templates.get(fingerprint)
            if cached is not None:
                return cached
            if self.in_memory:
                template: Any = self._build_memory(fingerprint, migrations, seed, environment, rebuild=rebuild)
            else:
                template = self._build_file(fingerprint, migrations, seed, environment, rebuild=rebuild)
            self._templates[fingerprint] = template
            return template

    def _build_memory(
        self,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        environment: BuildEnvironment | None,
        *,
        rebuild: bool = False,
    ) -> MemoryTemplate:
        # A named memdb database, so that alembic and SQLAlchemy metadata steps can reach
        # the template through a URL while it is built; private to this process.
        name = f"{PREFIX}tpl_{fingerprint}_{self.run_id}"
        conn = sqlite3.connect(f"file:/{name}?vfs=memdb", uri=True, check_same_thread=False)
        try:
            if self.cache is None:
                _build(conn, migrations, seed, f"file:/{name}?vfs=memdb", environment)
            else:  # the image an earlier run or another worker built, else build and keep it
                with self.cache.locked(fingerprint):
                    image = None if rebuild else self.cache.load(fingerprint)
                    if image is not None:
                        conn.deserialize(image)
                        log.debug("loaded in-memory template %s from %s", fingerprint, self.cache.path(fingerprint))
                    else:
                        _build(conn, migrations, seed, f"file:/{name}?vfs=memdb", environment)
                        self.cache.store(fingerprint, conn.serialize())
        except BaseException:
            conn.close()
            raise
        # the file each scope copies: in WAL mode, which its copies keep (cheaper than setting it on each)
        assert self.directory is not None
        path = self.directory / f"{PREFIX}tpl_{fingerprint}.sqlite3"
        try:
            _delete_database_files(path)  # one a failed build left
            target = sqlite3.connect(str(path))
            try:
                conn.backup(target)
                _set_wal(target)
            finally:
                target.close()  # the last connection checkpoints: the file holds everything
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise BackendUnavailableError(f"cannot write the template {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        log.debug("built in-memory template %s (%s)", fingerprint, path)
        return MemoryTemplate(fingerprint, conn, path=path)

    def _build_file(
        self,
        fingerprint: str,
        migrations: MigrationSet,
        seed: MigrationSet,
        environment: BuildEnvironment | None,
        *,
        rebuild: bool,
    ) -> FileTemplate:
        assert self.directory is not None
        final = self.directory / f"{PREFIX}tpl_{fingerprint}.sqlite3"
        if final.exists() and not rebuild:
            log.debug("reusing template file %s", final)
            try:
                return FileTemplate(fingerprint, final, wal=_is_wal(final))
            except OSError as exc:
                raise BackendUnavailableError(f"cannot read the template {final}: {exc}") from exc
        building = self.directory / f"{PREFIX}tpl_{fingerprint}.{os.getpid()}.{uuid.uuid4().hex[:6]}.building"
        try:
            conn = sqlite3.connect(str(building))
        except sqlite3.Error as exc:  # the directory vanished or turned read-only since __init__
            raise BackendUnavailableError(
                f"cannot write the template {final}: {exc}; point dbscope_url at a writable directory"
            ) from exc
        try:
            _build(conn, migrations, seed, str(building), environment)
            _set_wal(conn)  # kept by every copy: readers read the last commit while a writer holds a transaction
            conn.close()  # the last connection checkpoints: the file holds everything, no -wal is left
            os.replace(building, final)  # atomic: no one ever opens a half-built template
        except BaseException as exc:
            conn.close()
            building.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, MigrationError):
                raise BackendUnavailableError(f"cannot write the template {final}: {exc}") from exc
            raise
        log.debug("built template file %s", final)
        return FileTemplate(fingerprint, final)

    #: held while a database's name is chosen and the database made, so no two get one name
    _naming = threading.Lock()

    def create(self, template: Any, *, label: str) -> SQLiteMemoryDatabase | SQLiteFileDatabase:
        # the label (a worker id from the environment) becomes a file name and a URI path:
        # only [A-Za-z0-9_] survive, so no '/', '..', '?' or '#' can escape or change either
        label = re.sub(r"[^A-Za-z0-9_]+", "_", label).strip("_") or "db"
        # sqlite://'s directory is the process's own: its names need no run id, and a worker's
        # database ("reset") is then named alike in every process and run (see DirectoryAlias)
        base = name = f"{PREFIX}{label}" if self.in_memory else f"{PREFIX}{self.run_id}_{label}"
        with self._naming:
            # a label given again while its database lives (a worker's database of the reset
            # strategy for other migrations: "gw0_reset" twice) gets a number, not the same file
            # The copy creates its file exclusively (O_EXCL): a name in use, this process's or
            # another's (a forked child), fails it and the next number is tried; no stat() first.
            number = 1
            while True:
                try:
                    return self._database(name, template)
                except FileExistsError:
                    pass
                number += 1
                name = f"{base}_{number}"

    def _database(self, name: str, template: Any) -> SQLiteMemoryDatabase | SQLiteFileDatabase:
        assert self.directory is not None
        try:
            if self.in_memory:
                alias = self.alias.path if self.alias is not None else None
                return SQLiteMemoryDatabase(self.directory / f"{name}.sqlite3", template, alias)
            return SQLiteFileDatabase(self.directory / f"{name}.sqlite3", template)
        except FileExistsError:
            raise
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot create the database file {name}.sqlite3 in {self.directory}: {exc.strerror}; "
                "free some disk space or point dbscope_url at another directory"
            ) from exc

    def close(self) -> None:
        with self._lock:
            for template in self._templates.values():
                if isinstance(template, MemoryTemplate):
                    template.connection.close()
            self._templates.clear()
        if self._owner_file is not None:
            self._owner_file.unlink(missing_ok=True)
        if self.alias is not None:
            self.alias.close()
        if self._own_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
