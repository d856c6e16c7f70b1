"""Who owns a dbscope database on a MariaDB/MySQL server, whether that owner is alive, and garbage collection.

MySQL has no database comments, so the owner records live in a registry database,
``dbscope_registry``: a row in ``dbscope_registry.owners`` for every database dbscope
creates (the JSON of :class:`~dbscope.backends.servers.OwnerRecord`), written *before* the
database is created (and in the same script). dbscope drops nothing that lacks the
``dbscope_`` prefix *and* a record.

A run is alive while any of these holds:

* a connection of it holds the named lock ``dbscope_run_<run>`` (``GET_LOCK``; the
  server releases it the moment the run's connection is gone);
* it is on this machine (same host name and boot) and its pid is running;
* its heartbeat in ``dbscope_registry.runs`` is younger than ``stale_after_s``.

A database whose owner is not alive is garbage. Templates are kept (later runs reuse
them) unless asked; kept databases too. The record, the judge and the verdicts are
servers.py's, shared with PostgreSQL; this module says where MariaDB keeps them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import BackendUnavailableError
from .mariadb_connect import quote_name as q
from .mariadb_schema import literal, rows
from .processes import pid_alive
from .servers import (
    PREFIX,
    REGISTRY_DB,
    STALE_AFTER_S,
    TEMPLATE_PREFIX,
    GarbageItem,
    OwnerRecord,
    RunBeat,
    RunJudge,
    garbage_item,
)
from .servers import refusal as _refusal

__all__ = [
    "OwnerRecord",
    "drop_checked",
    "drop_unused_template",
    "ensure_registry",
    "plan_garbage",
    "run_lock",
]

log = logging.getLogger("dbscope.database")

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
    return _refusal(name, why, recorded=f"whose owner is recorded in {REGISTRY_DB}.owners")


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


def _judge(conn: Any, stale: float) -> RunJudge:
    """The judge of runs on this server: heartbeats from the registry, run locks asked of the server when needed."""
    now = time.time()
    runs = {
        str(run): RunBeat(now - float(beat), tuple(t for t in str(templates).split(",") if t))
        for run, beat, templates in rows(conn, f"SELECT run, heartbeat, templates FROM {q(REGISTRY_DB)}.`runs`")
    }
    held: dict[str, bool] = {}

    def locked(run: str) -> bool:
        if run not in held:
            held[run] = rows(conn, "SELECT IS_USED_LOCK(%s)", [run_lock(run)])[0][0] is not None
        return held[run]

    return RunJudge(runs=runs, locked=locked, stale=stale)


def plan_garbage(
    conn: Any, *, stale_after_s: float = STALE_AFTER_S, templates: bool = False, kept: bool = False
) -> list[GarbageItem]:
    """Every ``dbscope_*`` database on the server, each with 'drop' or 'keep' and the reason."""
    judge = _judge(conn, stale_after_s)
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
    return [
        GarbageItem(name, "dbscope's registry of runs and of the databases they own", "keep")
        if name == REGISTRY_DB
        else garbage_item(name, records.get(name), judge, templates=templates, kept=kept)
        for name in names
    ]


def drop_unused_template(conn: Any, name: str, *, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Drop the template ``name`` if, holding its build lock, still no live run uses it.

    A run notes the template it uses while it holds that lock, whether it found the
    template or built it: under the lock no run is between finding it and noting its use.
    A lock another session holds (a build, a run starting) keeps the template, saying so.
    """
    lock = template_lock(name[len(TEMPLATE_PREFIX) :])
    if not rows(conn, "SELECT GET_LOCK(%s, 0)", [lock])[0][0]:
        raise refusal(name, "a run is building it or starting to use it now")
    try:
        user = _judge(conn, stale_after_s).template_in_use(name)
        if user is not None:
            raise refusal(name, f"live run {user} started using it")
        return drop_checked(conn, name, allow_kinds=("template",))
    finally:
        rows(conn, "SELECT RELEASE_LOCK(%s)", [lock])


def forget_dead_runs(conn: Any, *, stale_after_s: float = STALE_AFTER_S) -> None:
    """Delete the heartbeat rows of runs that are gone, and owner rows of databases that no longer exist."""
    judge = _judge(conn, stale_after_s)
    for run, beat in judge.runs.items():
        if judge.locked(run):
            continue
        mine = rows(conn, f"SELECT host, pid FROM {q(REGISTRY_DB)}.`runs` WHERE run = %s", [run])
        gone_here = bool(mine) and str(mine[0][0]) == judge.machine.host and not pid_alive(int(mine[0][1]))
        if beat.heartbeat_age > stale_after_s or gone_here:
            rows(conn, f"DELETE FROM {q(REGISTRY_DB)}.`runs` WHERE run = %s", [run])
    rows(
        conn,
        f"DELETE FROM {q(REGISTRY_DB)}.`owners` WHERE name NOT IN "
        "(SELECT SCHEMA_NAME FROM information_schema.SCHEMATA) "
        "AND JSON_VALUE(record, '$.created') < %s",
        [time.time() - stale_after_s],
    )
