"""Who owns a dbscope database on a MariaDB/MySQL server, whether that owner is alive, and garbage collection.

MySQL has no database comments, so the owner records live in a registry database,
``dbscope_registry``: a row in ``dbscope_registry.owners`` for every database dbscope
creates, written *before* the database is created (and in the same script), such as::

    {"dbscope": 1, "kind": "clone", "run": "3f2a9c1d", "session": "...", "host": "ci-7",
     "boot": "<kernel boot id>", "pid": 4242, "created": 1732185600.5, "template": "dbscope_tpl_..."}

``kind`` is ``clone``, ``building`` (a template being built), ``template``, ``snapshot``
(a suite's baseline, or its write notes) or ``kept``. dbscope drops nothing that lacks
the ``dbscope_`` prefix *and* a record.

A run is alive while any of these holds:

* a connection of it holds the named lock ``dbscope_run_<run>`` (``GET_LOCK``; the
  server releases it the moment the run's connection is gone);
* it is on this machine (same host name and boot) and its pid is running;
* its heartbeat in ``dbscope_registry.runs`` is younger than ``stale_after_s``.

A database whose owner is not alive is garbage. Templates are kept (later runs reuse
them) unless asked; kept databases too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ..errors import BackendUnavailableError
from .mariadb_connect import quote_name as q
from .mariadb_schema import literal, rows
from .processes import pid_alive

__all__ = [
    "KINDS",
    "PREFIX",
    "REGISTRY_DB",
    "TEMPLATE_PREFIX",
    "GarbageItem",
    "OwnerRecord",
    "drop_checked",
    "ensure_registry",
    "plan_garbage",
    "run_lock",
]

log = logging.getLogger("dbscope.database")

PREFIX = "dbscope_"
TEMPLATE_PREFIX = "dbscope_tpl_"
REGISTRY_DB = "dbscope_registry"
STALE_AFTER_S = 60.0
KINDS = ("clone", "building", "template", "snapshot", "kept")

REGISTRY_SCHEMA = (
    f"CREATE DATABASE IF NOT EXISTS {q(REGISTRY_DB)}",
    f"CREATE TABLE IF NOT EXISTS {q(REGISTRY_DB)}.`owners` (name varchar(64) PRIMARY KEY, record text NOT NULL)"
    " ENGINE=InnoDB",
    f"CREATE TABLE IF NOT EXISTS {q(REGISTRY_DB)}.`runs` (run varchar(64) PRIMARY KEY, session varchar(64) NOT NULL,"
    " host varchar(255) NOT NULL, pid int NOT NULL, heartbeat double NOT NULL, templates text NOT NULL)"
    " ENGINE=InnoDB",
)


def run_lock(run: str) -> str:
    """The name of the lock a run holds while it lives (at most 64 characters)."""
    return f"dbscope_run_{run}"[:64]


def template_lock(fingerprint: str) -> str:
    return f"dbscope_tpl_{fingerprint}"[:64]


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class OwnerRecord:
    """The owner of one database, as its row in the registry says."""

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
    def for_run(cls, run: str, *, session: str | None = None) -> OwnerRecord:
        return cls("clone", run, session or run, socket.gethostname(), _boot_id(), os.getpid())

    @property
    def is_template(self) -> bool:
        """A finished template, reused by later runs with the same migrations and seed."""
        return self.kind in ("template",)

    @property
    def is_kept(self) -> bool:
        """A failed test's database, kept until ``dbscope gc --kept``."""
        return self.kind in ("kept",)

    def but(self, **changes: Any) -> OwnerRecord:
        changes.setdefault("created", time.time())
        return replace(self, **changes)

    def to_json(self) -> str:
        data = {"dbscope": 1, **{k: v for k, v in asdict(self).items() if v is not None}}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> OwnerRecord | None:
        try:
            data = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("dbscope") != 1 or data.get("kind") not in KINDS:
            return None
        try:
            return cls(
                str(data["kind"]),
                str(data.get("run", "")),
                str(data.get("session", data.get("run", ""))),
                str(data.get("host", "")),
                str(data.get("boot", "")),
                int(data.get("pid", 0)),
                float(data.get("created", 0.0)),
                data.get("template"),
                data.get("fingerprint"),
            )
        except (TypeError, ValueError):
            return None


def ensure_registry(conn: Any) -> None:
    """Create the registry database and its tables once per server (racing creators are fine)."""
    if rows(
        conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'runs'", [REGISTRY_DB]
    ):
        return
    for statement in REGISTRY_SCHEMA:
        rows(conn, statement)


def note_owner(name: str, record: OwnerRecord) -> str:
    """The statement recording ``record`` as the owner of ``name`` (run before it is created)."""
    return (
        f"INSERT INTO {q(REGISTRY_DB)}.`owners` (name, record) VALUES ({literal(name)}, {literal(record.to_json())}) "
        "ON DUPLICATE KEY UPDATE record = VALUES(record)"
    )


def read_owner(conn: Any, name: str) -> tuple[bool, OwnerRecord | None]:
    """(whether ``name`` exists, its owner record)."""
    exists = bool(rows(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [name]))
    found = rows(conn, f"SELECT record FROM {q(REGISTRY_DB)}.`owners` WHERE name = %s", [name])
    return exists, OwnerRecord.from_json(str(found[0][0])) if found else None


def refusal(name: str, why: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"refusing to drop database {name!r}: {why}. dbscope only drops databases it created, whose name "
        f"starts with {PREFIX!r} and whose owner is recorded in {REGISTRY_DB}.owners."
    )


def kill_sessions(conn: Any, name: str) -> list[int]:
    """End every other session whose current database is ``name`` (what ``DROP DATABASE`` would wait for)."""
    ids = [
        int(r[0])
        for r in rows(
            conn, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", [name]
        )
    ]
    for session in ids:
        try:
            rows(conn, f"KILL CONNECTION {session}")
        except Exception as exc:  # gone meanwhile
            log.debug("KILL CONNECTION %d: %s", session, exc)
    return ids


def drop_checked(
    conn: Any,
    name: str,
    *,
    allow_kinds: tuple[str, ...] = ("clone", "building", "snapshot", "kept"),
) -> bool:
    """Drop ``name`` (ending the sessions on it) if it has the prefix and an owner record of those kinds.

    False when it does not exist; BackendUnavailableError, dropping nothing, for any other database.
    """
    if not name.startswith(PREFIX) or name == REGISTRY_DB:
        raise refusal(name, f"its name does not start with {PREFIX!r}" if name != REGISTRY_DB else "it is the registry")
    exists, record = read_owner(conn, name)
    if not exists:
        if record is not None:
            rows(conn, f"DELETE FROM {q(REGISTRY_DB)}.`owners` WHERE name = %s", [name])
        return False
    if record is None:
        raise refusal(name, f"it has no owner record in {REGISTRY_DB}.owners")
    if record.kind not in allow_kinds:
        raise refusal(name, f"it is dbscope's {record.kind}, which this operation does not drop")
    kill_sessions(conn, name)
    rows(conn, f"DROP DATABASE IF EXISTS {q(name)}")
    rows(conn, f"DELETE FROM {q(REGISTRY_DB)}.`owners` WHERE name = %s", [name])
    return True


# -- runs ---------------------------------------------------------------------------------------------


def register_run(conn: Any, record: OwnerRecord) -> None:
    """Take the run's liveness lock on ``conn`` and write its heartbeat row."""
    rows(conn, "SELECT GET_LOCK(%s, 0)", [run_lock(record.run)])
    rows(
        conn,
        f"INSERT INTO {q(REGISTRY_DB)}.`runs` (run, session, host, pid, heartbeat, templates) "
        "VALUES (%s, %s, %s, %s, %s, '') ON DUPLICATE KEY UPDATE heartbeat = VALUES(heartbeat)",
        [record.run, record.session, record.host, record.pid, time.time()],
    )


def heartbeat(conn: Any, run: str) -> None:
    rows(conn, f"UPDATE {q(REGISTRY_DB)}.`runs` SET heartbeat = %s WHERE run = %s", [time.time(), run])


def note_template(conn: Any, run: str, template: str) -> None:
    rows(
        conn,
        f"UPDATE {q(REGISTRY_DB)}.`runs` SET templates = CONCAT(templates, %s, ',') WHERE run = %s "
        "AND FIND_IN_SET(%s, templates) = 0",
        [template, run, template],
    )


def unregister_run(conn: Any, run: str) -> None:
    rows(conn, f"DELETE FROM {q(REGISTRY_DB)}.`runs` WHERE run = %s", [run])
    rows(conn, "SELECT RELEASE_LOCK(%s)", [run_lock(run)])


# -- garbage ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GarbageItem:
    """One dbscope database and what garbage collection does with it, and why."""

    name: str
    reason: str
    action: Literal["drop", "keep"]

    def __str__(self) -> str:
        return f"{self.action:4} {self.name}: {self.reason}"


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


class _Judge:
    """Decides whether the run that owns a database is alive."""

    def __init__(self, conn: Any, stale: float) -> None:
        self.conn = conn
        self.stale = stale
        self.now = time.time()
        self.host, self.boot = socket.gethostname(), _boot_id()
        self.runs: dict[str, tuple[float, tuple[str, ...]]] = {
            str(run): (self.now - float(beat), tuple(t for t in str(templates).split(",") if t))
            for run, beat, templates in rows(conn, f"SELECT run, heartbeat, templates FROM {q(REGISTRY_DB)}.`runs`")
        }
        self._locks: dict[str, bool] = {}

    def locked(self, run: str) -> bool:
        if run not in self._locks:
            self._locks[run] = rows(self.conn, "SELECT IS_USED_LOCK(%s)", [run_lock(run)])[0][0] is not None
        return self._locks[run]

    def alive(self, record: OwnerRecord) -> tuple[bool, str]:
        who = f"run {record.run} (pid {record.pid} on {record.host or '?'})"
        if self.locked(record.run):
            return True, f"{who} is still connected to the server"
        here = record.host == self.host
        if here and record.boot and self.boot and record.boot != self.boot:
            return False, f"{who} is gone: this machine has rebooted since"
        if here and not pid_alive(record.pid):
            return False, f"{who} is gone: process {record.pid} is not running"
        beat = self.runs.get(record.run)
        if beat is not None:
            if beat[0] > self.stale:
                return False, f"{who} stopped its heartbeat {_ago(beat[0])} (stale after {self.stale:g} s)"
            return True, f"{who} is alive (heartbeat {_ago(beat[0])})"
        age = max(self.now - record.created, 0.0)
        if here:
            return True, f"{who} is running"
        if age > self.stale:
            return False, f"{who} has no heartbeat and the database was created {_ago(age)}"
        return True, f"{who} created it {_ago(age)}; waiting for its heartbeat"

    def template_in_use(self, name: str) -> str | None:
        for run, (age, templates) in self.runs.items():
            if name in templates and (self.locked(run) or age <= self.stale):
                return run
        return None


def plan_garbage(
    conn: Any, *, stale_after_s: float = STALE_AFTER_S, templates: bool = False, kept: bool = False
) -> list[GarbageItem]:
    """Every ``dbscope_*`` database on the server, each with 'drop' or 'keep' and the reason."""
    judge = _Judge(conn, stale_after_s)
    records = {
        str(name): OwnerRecord.from_json(str(record))
        for name, record in rows(conn, f"SELECT name, record FROM {q(REGISTRY_DB)}.`owners`")
    }
    names = [
        str(r[0])
        for r in rows(
            conn,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbscope\\_%' "
            "ORDER BY SCHEMA_NAME",
        )
    ]
    items: list[GarbageItem] = []
    for name in names:
        record = records.get(name)
        if name == REGISTRY_DB:
            items.append(GarbageItem(name, "dbscope's registry of runs and of the databases they own", "keep"))
        elif record is None:
            items.append(
                GarbageItem(
                    name,
                    "no dbscope owner record: dbscope did not create it; dbscope never drops it, drop it by hand if "
                    "it is yours",
                    "keep",
                )
            )
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
                        "drop templates no live run uses with dbscope gc --templates",
                        "keep",
                    )
                )
        elif record.is_kept:
            reason = f"kept for a failed test by run {record.run}"
            if kept:
                items.append(GarbageItem(name, reason, "drop"))
            else:
                items.append(GarbageItem(name, f"{reason}; drop it with dbscope gc --kept when done", "keep"))
        else:
            alive, why = judge.alive(record)
            items.append(GarbageItem(name, f"{record.kind}: {why}", "keep" if alive else "drop"))
    return items


def forget_dead_runs(conn: Any, *, stale_after_s: float = STALE_AFTER_S) -> None:
    """Delete the heartbeat rows of runs that are gone, and owner rows of databases that no longer exist."""
    judge = _Judge(conn, stale_after_s)
    for run, (age, _) in judge.runs.items():
        if judge.locked(run):
            continue
        mine = rows(conn, f"SELECT host, pid FROM {q(REGISTRY_DB)}.`runs` WHERE run = %s", [run])
        gone_here = bool(mine) and str(mine[0][0]) == judge.host and not pid_alive(int(mine[0][1]))
        if age > stale_after_s or gone_here:
            rows(conn, f"DELETE FROM {q(REGISTRY_DB)}.`runs` WHERE run = %s", [run])
    rows(
        conn,
        f"DELETE FROM {q(REGISTRY_DB)}.`owners` WHERE name NOT IN "
        "(SELECT SCHEMA_NAME FROM information_schema.SCHEMATA) "
        "AND JSON_VALUE(record, '$.created') < %s",
        [time.time() - stale_after_s],
    )
