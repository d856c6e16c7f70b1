"""Who owns a dbscope database, whether that owner is still alive, and garbage collection.

Every database dbscope creates has a name starting with ``dbscope_`` and an *owner
record*: a JSON comment (``COMMENT ON DATABASE``) such as::

    {"dbscope": 1, "kind": "clone", "run": "3f2a9c1d", "session": "...", "host": "ci-7",
     "boot": "<kernel boot id>", "pid": 4242, "created": 1732185600.5, "template": "dbscope_tpl_..."}

``kind`` is ``clone`` (a scope's database), ``building`` (a template being built),
``template``, ``snapshot`` (a short-lived copy read by restore), ``kept`` (a failed
test's database kept on request) or ``registry``. dbscope drops nothing that lacks the
prefix *and* a record.

A run is alive when any of these holds:

* its session in the ``dbscope_registry`` database holds the run's advisory lock (the
  lock disappears the moment the run's process or machine is gone: server-side TCP
  keepalives end a vanished client's session within ~30 s);
* it is on this machine (same host name and boot) and its pid is running;
* its heartbeat row in ``dbscope_registry.runs`` (updated every few seconds by the
  run's janitor thread) is younger than ``stale_after_s``, or, with no row, its
  database is younger than that.

A database whose owner is not alive is garbage. Templates are kept: later runs reuse
them; ``templates=True`` drops those no live run uses. Kept databases are kept until
``kept=True``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import psycopg
from psycopg import sql

from ..errors import BackendUnavailableError
from .processes import pid_alive

__all__ = [
    "PREFIX",
    "REGISTRY_DB",
    "GarbageItem",
    "OwnerKind",
    "OwnerRecord",
    "drop_checked",
    "lock_key",
    "plan_garbage",
    "this_machine",
]

log = logging.getLogger("dbscope.database")

PREFIX = "dbscope_"
TEMPLATE_PREFIX = "dbscope_tpl_"
REGISTRY_DB = "dbscope_registry"
#: Advisory-lock namespaces (the first key of the two-key form): "dbsr", "dbst", "dbsg".
RUN_LOCK = 0x64627372
TEMPLATE_LOCK = 0x64627374
REGISTRY_LOCK = 0x64627367
STALE_AFTER_S = 60.0


class OwnerKind(enum.StrEnum):
    """What a dbscope database is, as its owner record's ``kind`` says."""

    CLONE = "clone"
    BUILDING = "building"
    TEMPLATE = "template"
    SNAPSHOT = "snapshot"
    KEPT = "kept"
    REGISTRY = "registry"


KINDS = tuple(OwnerKind)

REGISTRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run        text PRIMARY KEY,
    session    text NOT NULL,
    host       text NOT NULL,
    pid        integer NOT NULL,
    started    timestamptz NOT NULL DEFAULT now(),
    heartbeat  timestamptz NOT NULL DEFAULT now(),
    templates  text[] NOT NULL DEFAULT '{}'
)
"""


# Written before CREATE DATABASE and removed once the comment is on: CREATE DATABASE cannot
# share a transaction with COMMENT ON DATABASE, so a process killed in between (the pool's
# thread cloning ahead makes that likely) would otherwise leave a database with no owner.
PENDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    name     text PRIMARY KEY,
    record   text NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
)
"""


def lock_key(text: str) -> int:
    """A signed 32-bit advisory-lock key for ``text`` (a run id or a fingerprint)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Machine:
    host: str
    boot: str


def this_machine() -> Machine:
    return Machine(socket.gethostname(), _boot_id())


@dataclass(frozen=True)
class OwnerRecord:
    """What dbscope writes into the comment of every database it creates.

    ``kind`` is stored as the JSON key "kind"; given as a string, it is read as an
    :class:`OwnerKind` (a ``str`` too), which the ``is_*`` properties ask about.
    """

    kind: str
    run: str
    session: str
    host: str
    boot: str
    pid: int
    created: float = field(default_factory=time.time)
    template: str | None = None
    fingerprint: str | None = None

    @classmethod
    def for_run(cls, run: str, *, session: str | None = None, kind: str = "clone") -> OwnerRecord:
        machine = this_machine()
        return cls(kind, run, session or run, machine.host, machine.boot, os.getpid())

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", OwnerKind(self.kind))

    @property
    def is_registry(self) -> bool:
        """The ``dbscope_registry`` database: runs and their heartbeats."""
        return self.kind is OwnerKind.REGISTRY

    @property
    def is_template(self) -> bool:
        """A finished template, reused by later runs with the same migrations and seed."""
        return self.kind is OwnerKind.TEMPLATE

    @property
    def is_kept(self) -> bool:
        """A failed test's database, kept by ``--dbscope-keep-failed`` until ``dbscope gc --kept``."""
        return self.kind is OwnerKind.KEPT

    def but(self, **changes: Any) -> OwnerRecord:
        """A copy with ``changes`` and a fresh ``created`` time (unless given)."""
        changes.setdefault("created", time.time())
        return replace(self, **changes)

    def to_json(self) -> str:
        data = {"dbscope": 1, **{k: v for k, v in asdict(self).items() if v is not None}}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_comment(cls, comment: str | None) -> OwnerRecord | None:
        """The record in a database comment, or None when it is not a dbscope record."""
        if not comment:
            return None
        try:
            data = json.loads(comment)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("dbscope") != 1 or data.get("kind") not in KINDS:
            return None
        try:
            return cls(
                kind=str(data["kind"]),
                run=str(data.get("run", "")),
                session=str(data.get("session", data.get("run", ""))),
                host=str(data.get("host", "")),
                boot=str(data.get("boot", "")),
                pid=int(data.get("pid", 0)),
                created=float(data.get("created", 0.0)),
                template=data.get("template"),
                fingerprint=data.get("fingerprint"),
            )
        except (TypeError, ValueError):
            return None


def comment_on(name: str, record: OwnerRecord) -> sql.Composed:
    """``COMMENT ON DATABASE <name> IS '<record>'`` (utility statements take no parameters)."""
    return sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(record.to_json()))


def read_owner(conn: psycopg.Connection[Any], name: str) -> tuple[bool, bool, OwnerRecord | None]:
    """(exists, is_template, owner record) of the database ``name``.

    The owner record is the database's comment, or, while it is being created, its row
    in the registry's ``pending`` table (``conn`` connected to the registry).
    """
    row = conn.execute(
        "SELECT datistemplate, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
    ).fetchone()
    if row is None:
        return False, False, None
    record = OwnerRecord.from_comment(row[1])
    if record is None:
        record = pending_record(conn, name)
    return True, bool(row[0]), record


def note_pending(conn: psycopg.Connection[Any], name: str, record: OwnerRecord) -> None:
    """Record the owner of ``name`` before it is created (``conn`` on the registry)."""
    conn.execute(
        "INSERT INTO pending (name, record) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
        [name, record.to_json()],
    )


def clear_pending(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute("DELETE FROM pending WHERE name = %s", [name])


def pending_record(conn: psycopg.Connection[Any] | None, name: str) -> OwnerRecord | None:
    """The owner noted for ``name`` before its creation, if any (None off the registry)."""
    if conn is None:
        return None
    try:
        row = conn.execute("SELECT record FROM pending WHERE name = %s", [name]).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        return None
    return OwnerRecord.from_comment(row[0]) if row else None


def refusal(name: str, why: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"refusing to drop database {name!r}: {why}. dbscope only drops databases it created, whose name "
        f"starts with {PREFIX!r} and whose comment holds a dbscope owner record."
    )


def drop_checked(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    allow_template: bool = False,
    allow_kinds: Iterable[str] = ("clone", "building", "snapshot", "kept"),
) -> bool:
    """Drop ``name`` (WITH FORCE) if it carries the prefix and an owner record; False if it is gone.

    Raises BackendUnavailableError, dropping nothing, for any other database.
    """
    if not name.startswith(PREFIX):
        raise refusal(name, f"its name does not start with {PREFIX!r}")
    exists, is_template, record = read_owner(conn, name)
    if not exists:
        return False
    if record is None:
        raise refusal(name, "it has no dbscope owner record (its comment is not one)")
    kinds = set(allow_kinds) | ({"template"} if allow_template else set())
    if record.kind not in kinds:
        raise refusal(name, f"it is dbscope's {record.kind}, which this operation does not drop")
    ident = sql.Identifier(name)
    if is_template:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    try:
        clear_pending(conn, name)
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        pass  # not connected to the registry
    return True


# -- the registry of runs ---------------------------------------------------------------------------


def ensure_registry(maintenance: psycopg.Connection[Any], record: OwnerRecord) -> None:
    """Create the ``dbscope_registry`` database once per server (racing creators are fine)."""
    if maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [REGISTRY_DB]).fetchone():
        return
    try:
        maintenance.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(REGISTRY_DB)))
    except psycopg.errors.DuplicateDatabase:
        return  # another process created it a moment ago
    except psycopg.errors.UniqueViolation:
        return
    maintenance.execute(comment_on(REGISTRY_DB, record.but(kind="registry")))
    log.debug("created the registry database %s", REGISTRY_DB)


def ensure_schema(registry: psycopg.Connection[Any]) -> None:
    """Create the ``runs`` table once; every role that runs dbscope on this server may use it."""
    with registry.transaction():
        registry.execute("SELECT pg_advisory_xact_lock(%s, 0)", [REGISTRY_LOCK])
        for table, schema in (("runs", REGISTRY_SCHEMA), ("pending", PENDING_SCHEMA)):
            missing = registry.execute("SELECT to_regclass(%s) IS NULL", [table]).fetchone()
            if missing and missing[0]:  # (IF NOT EXISTS would still need CREATE on the schema)
                registry.execute(schema)
                registry.execute(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO PUBLIC").format(sql.Identifier(table))
                )


def register_run(registry: psycopg.Connection[Any], record: OwnerRecord) -> None:
    """Hold the run's liveness lock on this session and insert its heartbeat row."""
    registry.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK, lock_key(record.run)])
    registry.execute(
        "INSERT INTO runs (run, session, host, pid) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (run) DO UPDATE SET heartbeat = now()",
        [record.run, record.session, record.host, record.pid],
    )


def heartbeat(registry: psycopg.Connection[Any], run: str) -> None:
    registry.execute("UPDATE runs SET heartbeat = now() WHERE run = %s", [run])


def note_template(registry: psycopg.Connection[Any], run: str, template: str) -> None:
    registry.execute(
        "UPDATE runs SET templates = array_append(templates, %s) WHERE run = %s AND NOT %s = ANY(templates)",
        [template, run, template],
    )


def unregister_run(registry: psycopg.Connection[Any], run: str) -> None:
    registry.execute("DELETE FROM runs WHERE run = %s", [run])
    registry.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK, lock_key(run)])


# -- garbage ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GarbageItem:
    """One dbscope database and what garbage collection does with it, and why."""

    name: str
    reason: str
    action: Literal["drop", "keep"]

    def __str__(self) -> str:
        return f"{self.action:4} {self.name}: {self.reason}"


@dataclass(frozen=True)
class _Run:
    heartbeat_age: float
    templates: tuple[str, ...]


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


class _Judge:
    """Decides whether the run that owns a database is alive."""

    def __init__(self, conn: psycopg.Connection[Any], registry: psycopg.Connection[Any] | None, stale: float) -> None:
        self.stale = stale
        self.machine = this_machine()
        self.now = time.time()
        self.locks = {
            int(objid)
            for (objid,) in conn.execute(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid "
                "AND objsubid = 2 AND granted",
                [RUN_LOCK],
            )
        }
        self.runs: dict[str, _Run] = {}
        if registry is not None:
            for run, age, templates in registry.execute(
                "SELECT run, extract(epoch FROM now() - heartbeat)::float8, templates FROM runs"
            ):
                self.runs[str(run)] = _Run(float(age), tuple(templates or ()))

    def locked(self, run: str) -> bool:
        return (lock_key(run) & 0xFFFFFFFF) in self.locks

    def alive(self, record: OwnerRecord) -> tuple[bool, str]:
        run, who = record.run, f"run {record.run} (pid {record.pid} on {record.host or '?'})"
        if self.locked(run):
            return True, f"{who} is still connected to the server"
        here = record.host == self.machine.host
        if here and record.boot and self.machine.boot and record.boot != self.machine.boot:
            return False, f"{who} is gone: this machine has rebooted since"
        if here and not pid_alive(record.pid):
            return False, f"{who} is gone: process {record.pid} is not running"
        beat = self.runs.get(run)
        if beat is not None:
            if beat.heartbeat_age > self.stale:
                return False, f"{who} stopped its heartbeat {_ago(beat.heartbeat_age)} (stale after {self.stale:g} s)"
            return True, f"{who} is alive (heartbeat {_ago(beat.heartbeat_age)})"
        age = max(self.now - record.created, 0.0)
        if here:
            return True, f"{who} is running"
        if age > self.stale:
            return False, f"{who} has no heartbeat and the database was created {_ago(age)}"
        return True, f"{who} created it {_ago(age)}; waiting for its heartbeat"

    def template_in_use(self, name: str) -> str | None:
        for run, info in self.runs.items():
            if name in info.templates and (self.locked(run) or info.heartbeat_age <= self.stale):
                return run
        return None


def plan_garbage(
    conn: psycopg.Connection[Any],
    registry: psycopg.Connection[Any] | None,
    *,
    stale_after_s: float = STALE_AFTER_S,
    templates: bool = False,
    kept: bool = False,
) -> list[GarbageItem]:
    """Every ``dbscope_*`` database on the server, each with 'drop' or 'keep' and the reason."""
    judge = _Judge(conn, registry, stale_after_s)
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname LIKE 'dbscope\\_%' ORDER BY datname"
    ).fetchall()
    items: list[GarbageItem] = []
    for name, comment in rows:
        name = str(name)
        record = OwnerRecord.from_comment(comment) or pending_record(registry, name)
        if record is None:
            items.append(
                GarbageItem(
                    name,
                    "no dbscope owner record: dbscope did not create it (or was stopped between creating it and "
                    "recording its owner); dbscope never drops it, drop it by hand if it is yours",
                    "keep",
                )
            )
        elif record.is_registry:
            items.append(GarbageItem(name, "dbscope's registry of runs (their heartbeats)", "keep"))
        elif record.is_template:
            user = judge.template_in_use(name)
            built = f"fingerprint {record.fingerprint}, built {_ago(max(judge.now - record.created, 0))}"
            if user is not None:
                items.append(GarbageItem(name, f"template ({built}) in use by live run {user}", "keep"))
            elif templates:
                items.append(GarbageItem(name, f"template ({built}) that no live run uses", "drop"))
            else:
                items.append(
                    GarbageItem(
                        name,
                        f"template ({built}), reused by later runs with the same migrations and seed; "
                        "drop templates no live run uses with templates=True (dbscope gc --templates)",
                        "keep",
                    )
                )
        elif record.is_kept:
            if kept:
                items.append(GarbageItem(name, f"kept for a failed test by run {record.run}", "drop"))
            else:
                items.append(
                    GarbageItem(
                        name,
                        f"kept for a failed test by run {record.run} (--dbscope-keep-failed); "
                        "drop it with kept=True (dbscope gc --kept) when done",
                        "keep",
                    )
                )
        else:
            alive, why = judge.alive(record)
            items.append(GarbageItem(name, f"{record.kind}: {why}", "keep" if alive else "drop"))
    return items


_RUN_LOCK_HELD = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid AND objsubid = 2 AND granted"
    " AND objid::bigint = ((('x' || substr(encode(sha256(convert_to(run, 'UTF8')), 'hex'), 1, 8))::bit(32))::int"
    "  ::bigint & 4294967295))"
)


def forget_dead_runs(registry: psycopg.Connection[Any], *, stale_after_s: float = STALE_AFTER_S) -> int:
    """Delete heartbeat rows of runs that are gone, and pending rows of databases that no longer exist.

    A run is gone when it holds no lock and its heartbeat is stale, or, on this machine, at
    once when its process is not running (a killed worker's row need not wait for staleness).
    """
    try:
        registry.execute(
            "DELETE FROM pending WHERE created < now() - make_interval(secs => %s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = pending.name)",
            [stale_after_s],
        )
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        pass
    cur = registry.execute(
        f"DELETE FROM runs WHERE heartbeat < now() - make_interval(secs => %s) AND NOT {_RUN_LOCK_HELD}",
        [stale_after_s, RUN_LOCK],
    )
    forgotten = cur.rowcount or 0
    rows = registry.execute("SELECT run, pid FROM runs WHERE host = %s", [this_machine().host]).fetchall()
    gone = [str(run) for run, pid in rows if not pid_alive(int(pid))]
    if gone:
        cur = registry.execute(f"DELETE FROM runs WHERE run = ANY(%s) AND NOT {_RUN_LOCK_HELD}", [gone, RUN_LOCK])
        forgotten += cur.rowcount or 0
    return forgotten
