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

The record, the judge of runs and the verdicts are the server backends' own (servers.py);
this module says where PostgreSQL keeps them: comments, advisory locks, the registry database.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from ..errors import BackendUnavailableError
from .processes import pid_alive
from .servers import (
    KINDS,
    PREFIX,
    REGISTRY_DB,
    STALE_AFTER_S,
    TEMPLATE_PREFIX,
    GarbageItem,
    OwnerKind,
    OwnerRecord,
    RunBeat,
    RunJudge,
    garbage_item,
    this_machine,
)
from .servers import refusal as _refusal

__all__ = [
    "KINDS",
    "PREFIX",
    "REGISTRY_DB",
    "STALE_AFTER_S",
    "TEMPLATE_PREFIX",
    "GarbageItem",
    "OwnerKind",
    "OwnerRecord",
    "drop_checked",
    "drop_unused_template",
    "lock_key",
    "plan_garbage",
    "this_machine",
]

log = logging.getLogger("dbscope.database")

#: Advisory-lock namespaces (the first key of the two-key form): "dbsr", "dbst", "dbsg".
RUN_LOCK = 0x64627372
TEMPLATE_LOCK = 0x64627374
REGISTRY_LOCK = 0x64627367


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
    record = OwnerRecord.from_json(row[1])
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
    return OwnerRecord.from_json(row[0]) if row else None


def refusal(name: str, why: str) -> BackendUnavailableError:
    return _refusal(name, why, recorded="whose comment holds a dbscope owner record")


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


def drop_unused_template(
    conn: psycopg.Connection[Any], registry: psycopg.Connection[Any] | None, name: str, *, stale_after_s: float
) -> bool:
    """Drop the template ``name`` if, under its build lock, still no live run uses it.

    A run notes the template it uses while it holds that lock (in the registry database,
    where advisory locks of the same keys meet), whether it found the template or built
    it: under the lock no run is between finding it and noting its use. A lock another
    process holds (a build, a run starting) keeps the template, saying so.
    """
    if registry is None:  # no registry: no run of dbscope ever noted a use on this server
        return drop_checked(conn, name, allow_template=True)
    key = [TEMPLATE_LOCK, lock_key(name[len(TEMPLATE_PREFIX) :])]
    row = registry.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
    if not (row and row[0]):
        raise refusal(name, "a run is building it or starting to use it now")
    try:
        user = _judge(conn, registry, stale_after_s).template_in_use(name)
        if user is not None:
            raise refusal(name, f"live run {user} started using it")
        return drop_checked(conn, name, allow_template=True)
    finally:
        registry.execute("SELECT pg_advisory_unlock(%s, %s)", key)


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


def _judge(conn: psycopg.Connection[Any], registry: psycopg.Connection[Any] | None, stale: float) -> RunJudge:
    """The judge of runs on this server: run locks from ``pg_locks``, heartbeats from the registry."""
    locks = {
        int(objid)
        for (objid,) in conn.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid "
            "AND objsubid = 2 AND granted",
            [RUN_LOCK],
        )
    }
    runs: dict[str, RunBeat] = {}
    if registry is not None:
        for run, age, templates in registry.execute(
            "SELECT run, extract(epoch FROM now() - heartbeat)::float8, templates FROM runs"
        ):
            runs[str(run)] = RunBeat(float(age), tuple(templates or ()))
    return RunJudge(runs=runs, locked=lambda run: (lock_key(run) & 0xFFFFFFFF) in locks, stale=stale)


def plan_garbage(
    conn: psycopg.Connection[Any],
    registry: psycopg.Connection[Any] | None,
    *,
    stale_after_s: float = STALE_AFTER_S,
    templates: bool = False,
    kept: bool = False,
) -> list[GarbageItem]:
    """Every ``dbscope_*`` database on the server, each with 'drop' or 'keep' and the reason."""
    judge = _judge(conn, registry, stale_after_s)
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname LIKE 'dbscope\\_%' ORDER BY datname"
    ).fetchall()
    return [
        garbage_item(
            str(name),
            OwnerRecord.from_json(comment) or pending_record(registry, str(name)),
            judge,
            templates=templates,
            kept=kept,
        )
        for name, comment in rows
    ]


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
