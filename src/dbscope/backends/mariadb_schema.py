"""What a MariaDB/MySQL clone, restore and rollback are made of: a database's blueprint and the scripts built from it.

MySQL has no template databases. A template's :class:`Blueprint` is read once per
process: ``SHOW CREATE TABLE`` of every table (``AUTO_INCREMENT=`` included), ``SHOW
CREATE VIEW`` (read while connected to the template: from another database the server
prefixes the template's name to every table), ``SHOW CREATE TRIGGER``, which tables hold
rows and their insertable columns. Then:

* a **clone** is one script sent in one round trip: ``CREATE DATABASE``, every ``CREATE
  TABLE`` with foreign-key checks off, ``INSERT ... SELECT`` of the seeded tables from the
  template, then views and triggers (after the rows, so no trigger fires for the copy);
* a **restore** (reset) is one script too: tables the test created are dropped, tables it
  dropped created again, user triggers dropped for the time of the restore, every table
  emptied with ``DELETE`` (``TRUNCATE`` recreates a file per table: slower) and the seeded
  ones filled from the template, ``AUTO_INCREMENT`` set back where it moved;
* after a **rollback**, ``AUTO_INCREMENT`` (which InnoDB does not roll back) is set back
  for the tables where it moved, read from ``information_schema.TABLES`` in one query.

Writes by other connections are noticed by row triggers (``dbscope_w*``) that append the
table's name to a table in a companion database of the worker's (``<name>_w``), never in
the database the app sees; the restore's own writes set ``@dbscope_quiet`` and are not
noted. Triggers miss ``TRUNCATE``, which creates the table anew: the write mark also
holds the tables' InnoDB ids.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymysql.converters import escape_string

from .mariadb_connect import quote_name as q

__all__ = [
    "Blueprint",
    "after_rollback_script",
    "clone_script",
    "counters",
    "read_blueprint",
    "restore_script",
    "run_script",
]

#: dbscope's own triggers and tables start with this; a blueprint leaves them out
OWN = "dbscope_"
_DEFINER = re.compile(r"\bDEFINER\s*=\s*(?:`(?:[^`]|``)*`|'[^']*'|\w+)@(?:`(?:[^`]|``)*`|'[^']*'|[\w.%-]+)\s*", re.I)
_AUTO_INCREMENT_OPTION = re.compile(r"\s+AUTO_INCREMENT=\d+")


def literal(value: str) -> str:
    return "'" + escape_string(value) + "'"


@dataclass(frozen=True)
class Blueprint:
    """Everything a clone or restore of one database needs, read once."""

    database: str
    charset: str
    collation: str
    tables: tuple[str, ...]  # base tables
    creates: dict[str, str] = field(repr=False)  # table -> CREATE TABLE (AUTO_INCREMENT= kept)
    columns: dict[str, tuple[str, ...]] = field(repr=False)  # table -> insertable columns
    seeded: tuple[str, ...] = ()  # tables that hold rows
    auto_increment: dict[str, int] = field(default_factory=dict)  # table -> its next value
    views: tuple[tuple[str, str], ...] = ()  # (name, CREATE VIEW), each after the views it reads
    triggers: tuple[tuple[str, str], ...] = ()  # (name, CREATE TRIGGER)
    trigger_tables: dict[str, str] = field(default_factory=dict)  # trigger -> the table it is on
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> tables whose foreign keys name it

    def closure(self, tables: Iterable[str]) -> set[str]:
        """``tables`` and every table whose foreign key names one of them, over and over (cascades reach those)."""
        found: set[str] = set()
        todo = [t for t in tables if t in self.creates]
        while todo:
            table = todo.pop()
            if table not in found:
                found.add(table)
                todo.extend(self.children.get(table, ()))
        return found


def rows(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def run_script(conn: Any, statements: Iterable[str]) -> None:
    """Send ``statements`` in one round trip (``conn`` was opened with multi-statements) and read every result."""
    script = ";\n".join(s for s in statements if s)
    if not script:
        return
    with conn.cursor() as cursor:
        cursor.execute(script)
        while cursor.nextset():
            pass


def results(conn: Any, statements: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    """The rows of each of ``statements``, sent in one round trip (``conn`` has multi-statements)."""
    out: list[list[tuple[Any, ...]]] = []
    with conn.cursor() as cursor:
        cursor.execute(";\n".join(statements))
        out.append(list(cursor.fetchall()))
        while cursor.nextset():
            out.append(list(cursor.fetchall()))
    return out


_INNODB_OPTIONS = re.compile(r"(\)\s*ENGINE=InnoDB)\b")


def transient_stats(create: str) -> str:
    """``create`` (a ``SHOW CREATE TABLE``) with ``STATS_PERSISTENT=0`` where it is InnoDB's and says nothing of it.

    Each copy's table statistics then live in memory only: InnoDB writes no rows to
    ``mysql.innodb_table_stats``/``innodb_index_stats`` when the copy is created and none
    are deleted when it is dropped (``benchmarks/bench_mariadb.py --proc``: 40 to 24 ms a
    clone on tmpfs, 142 to 113 ms on ext4). The option goes in the table options, before any
    ``PARTITION BY``; a table that sets its own is left as it is.
    """
    if re.search(r"\bSTATS_PERSISTENT=", create):
        return create
    return _INNODB_OPTIONS.sub(r"\1 STATS_PERSISTENT=0", create, count=1)


def read_blueprint(conn: Any, database: str) -> Blueprint:
    """The blueprint of ``database``; ``conn`` is switched to it (``USE``) for ``SHOW CREATE VIEW``."""
    conn.select_db(database)
    (charset, collation) = rows(
        conn,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = %s",
        [database],
    )[0]
    tables: list[str] = []
    views: list[str] = []
    for name, kind in rows(
        conn,
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
        [database],
    ):
        (views if kind == "VIEW" else tables).append(str(name))
    creates: dict[str, str] = {}
    auto_increment: dict[str, int] = {}
    for table in tables:
        create = str(rows(conn, f"SHOW CREATE TABLE {q(table)}")[0][1])
        creates[table] = transient_stats(create)
        found = re.search(r"\)[^)]*\bAUTO_INCREMENT=(\d+)", create)
        if found:
            auto_increment[table] = int(found.group(1))
        elif re.search(r"\bAUTO_INCREMENT\b", create):
            auto_increment[table] = 1
    columns: dict[str, list[str]] = {t: [] for t in tables}
    for table, column in rows(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND IS_GENERATED = 'NEVER' ORDER BY TABLE_NAME, ORDINAL_POSITION",
        [database],
    ):
        if str(table) in columns:
            columns[str(table)].append(str(column))
    seeded: list[str] = []
    if tables:
        probe = " UNION ALL ".join(f"SELECT {literal(t)} FROM DUAL WHERE EXISTS (SELECT 1 FROM {q(t)})" for t in tables)
        seeded = sorted(str(r[0]) for r in rows(conn, probe))
    view_sql = {v: _no_definer(str(rows(conn, f"SHOW CREATE VIEW {q(v)}")[0][1])) for v in views}
    trigger_tables = {
        str(name): str(table)
        for name, table in rows(
            conn,
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
            "AND TRIGGER_NAME NOT LIKE 'dbscope\\_%%' ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            [database],
        )
    }
    triggers = [(name, _no_definer(str(rows(conn, f"SHOW CREATE TRIGGER {q(name)}")[0][2]))) for name in trigger_tables]
    children: dict[str, list[str]] = {}
    for child, parent in rows(
        conn,
        "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = %s AND UNIQUE_CONSTRAINT_SCHEMA = %s",
        [database, database],
    ):
        children.setdefault(str(parent), []).append(str(child))
    return Blueprint(
        database,
        str(charset),
        str(collation),
        tuple(tables),
        creates,
        {t: tuple(c) for t, c in columns.items()},
        tuple(seeded),
        auto_increment,
        tuple((v, view_sql[v]) for v in _view_order(view_sql)),
        tuple(triggers),
        trigger_tables,
        {t: tuple(sorted(c)) for t, c in children.items()},
    )


def _no_definer(create: str) -> str:
    """Without ``DEFINER=...``: the clone's objects belong to dbscope's user, who may not name another."""
    return _DEFINER.sub("", create, count=1)


def _view_order(views: dict[str, str]) -> list[str]:
    """Views after the views they read (a view naming another in backticks reads it)."""
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return
        state[name] = 1
        body = views[name].split(" AS ", 1)[-1]
        for other in sorted(views):
            if other != name and q(other) in body:
                visit(other)
        state[name] = 2
        ordered.append(name)

    for name in sorted(views):
        visit(name)
    return ordered


def _copy(blueprint: Blueprint, table: str, target: str | None = None) -> str:
    cols = ", ".join(q(c) for c in blueprint.columns[table])
    into = f"{q(target)}.{q(table)}" if target else q(table)
    return f"INSERT INTO {into} ({cols}) SELECT {cols} FROM {q(blueprint.database)}.{q(table)}"


def clone_script(blueprint: Blueprint, name: str, *, before: Sequence[str] = ()) -> list[str]:
    """The statements that make ``name`` a copy of the blueprint's database (``before`` run first)."""
    return [
        *before,
        f"CREATE DATABASE {q(name)} CHARACTER SET {blueprint.charset} COLLATE {blueprint.collation}",
        f"USE {q(name)}",
        "SET @dbscope_fk = @@foreign_key_checks, foreign_key_checks = 0",
        *(blueprint.creates[t] for t in blueprint.tables),
        *(_copy(blueprint, t) for t in blueprint.seeded),
        *(sql for _, sql in blueprint.views),
        *(sql for _, sql in blueprint.triggers),
        "SET foreign_key_checks = @dbscope_fk",
    ]


@dataclass(frozen=True)
class Present:
    """What a database holds now: its tables and views, each table's next AUTO_INCREMENT value."""

    tables: dict[str, int | None]
    views: frozenset[str]
    triggers: frozenset[str]  # the user's
    tracked: frozenset[str] = frozenset()  # tables with dbscope's write-note triggers


def present_statements(database: str) -> list[str]:
    """Two queries whose rows :func:`present_of` makes a :class:`Present` of."""
    db = _string(database)
    return [
        f"SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db}",
        f"SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db}",
    ]


def present_of(found: list[list[tuple[Any, ...]]]) -> Present:
    tables: dict[str, int | None] = {}
    views: set[str] = set()
    for name, kind, auto in found[0]:
        if kind == "VIEW":
            views.add(str(name))
        else:
            tables[str(name)] = None if auto is None else int(auto)
    triggers: set[str] = set()
    tracked: set[str] = set()
    for name, table in found[1]:
        if not str(name).startswith(OWN):
            triggers.add(str(name))
        elif str(name).startswith(f"{OWN}wi_"):
            tracked.add(str(table))
    return Present(tables, frozenset(views), frozenset(triggers), frozenset(tracked))


def present(conn: Any, database: str) -> Present:
    return present_of(results(conn, present_statements(database)))


def _auto_increment_fixes(blueprint: Blueprint, now: dict[str, int | None]) -> list[str]:
    return [
        f"ALTER TABLE {q(t)} AUTO_INCREMENT = {value}"
        for t, value in sorted(blueprint.auto_increment.items())
        if t in now and now[t] is not None and now[t] != value
    ]


def same_objects(blueprint: Blueprint, state: Present) -> bool:
    """Whether ``state`` has the blueprint's tables, views and user triggers, no more and no fewer."""
    return (
        set(state.tables) == set(blueprint.tables)
        and state.views == {name for name, _ in blueprint.views}
        and state.triggers == set(blueprint.trigger_tables)
    )


def restore_script(
    blueprint: Blueprint, database: str, state: Present, *, quiet: str = "", only: Iterable[str] | None = None
) -> list[str]:
    """The statements that bring ``database`` (now in ``state``) back to the blueprint's contents.

    ``only``: the tables written since the database last held the blueprint's contents (its
    objects the blueprint's, see :func:`same_objects`); they and the tables whose foreign keys
    reach them (a cascade changes those) are restored, and ``AUTO_INCREMENT`` wherever it moved.

    Dropped tables and views come back from the blueprint, created ones are dropped (views
    hold no rows: the others stay as they are); user
    triggers are dropped while rows are copied (so none fires for the restore) and made
    again after. A column added to a table of the blueprint is not undone (the schema
    signature sees it). ``quiet``: a statement run first (write tracking's off switch).
    """
    if only is not None:
        return _partial_restore(blueprint, database, state, quiet, blueprint.closure(only))
    wanted = set(blueprint.tables)
    wanted_views = {name for name, _ in blueprint.views}
    extra = sorted(set(state.tables) - wanted)
    missing = [t for t in blueprint.tables if t not in state.tables]
    statements = [
        quiet,
        f"USE {q(database)}",
        "SET @dbscope_fk = @@foreign_key_checks, foreign_key_checks = 0",
    ]
    if state.views - wanted_views:
        statements.append("DROP VIEW IF EXISTS " + ", ".join(q(v) for v in sorted(state.views - wanted_views)))
    statements += [f"DROP TRIGGER IF EXISTS {q(t)}" for t in sorted(state.triggers)]
    if extra:
        statements.append("DROP TABLE IF EXISTS " + ", ".join(q(t) for t in extra))
    statements += [blueprint.creates[t] for t in missing]
    statements.append("START TRANSACTION")  # one commit (one log flush) for all the rows
    statements += [f"DELETE FROM {q(t)}" for t in blueprint.tables if t not in missing]
    statements += [_copy(blueprint, t) for t in blueprint.seeded]
    statements.append("COMMIT")
    statements += _auto_increment_fixes(blueprint, {t: v for t, v in state.tables.items() if t not in missing})
    statements += [sql for name, sql in blueprint.views if name not in state.views]
    statements += [sql for _, sql in blueprint.triggers]
    statements.append("SET foreign_key_checks = @dbscope_fk")
    return statements


def _partial_restore(blueprint: Blueprint, database: str, state: Present, quiet: str, tables: set[str]) -> list[str]:
    fixes = _auto_increment_fixes(blueprint, state.tables)
    if not tables and not fixes:
        return []
    triggers = [(name, sql) for name, sql in blueprint.triggers if blueprint.trigger_tables[name] in tables]
    ordered = [t for t in blueprint.tables if t in tables]
    return [
        quiet,
        f"USE {q(database)}",
        "SET @dbscope_fk = @@foreign_key_checks, foreign_key_checks = 0",
        *(f"DROP TRIGGER IF EXISTS {q(name)}" for name, _ in triggers),
        "START TRANSACTION",
        *(f"DELETE FROM {q(t)}" for t in ordered),
        *(_copy(blueprint, t) for t in ordered if t in blueprint.seeded),
        "COMMIT",
        *fixes,
        *(sql for _, sql in triggers),
        "SET foreign_key_checks = @dbscope_fk",
    ]


def counters(conn: Any, database: str, tables: Iterable[str] | None = None) -> dict[str, int | None]:
    """Each table's next ``AUTO_INCREMENT`` value (of ``tables`` only, if given), from ``information_schema.TABLES``.

    Reading it opens every table it lists: see :func:`autoinc_statement` for the cheap way.
    """
    sql = (
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'"
    )
    args: list[str] = [database]
    if tables is not None:
        names = sorted(tables)
        if not names:
            return {}
        sql += " AND TABLE_NAME IN (" + ", ".join(["%s"] * len(names)) + ")"
        args += names
    return {str(name): None if auto is None else int(auto) for name, auto in rows(conn, sql, args)}


_PLAIN = re.compile(r"[A-Za-z0-9_]+")


def autoinc_statement(database: str) -> str:
    """Each loaded table's ``AUTO_INCREMENT`` counter as InnoDB holds it in memory (no table opened).

    ``information_schema.TABLES`` opens every table to report it (0.5-0.7 ms for 30 tables);
    ``INNODB_SYS_TABLESTATS`` reads InnoDB's dictionary cache (~0.1 ms). A table missing there
    (not loaded), or whose counter reads 0 (loaded, not yet opened by the server), is read
    from ``TABLES`` instead by :func:`read_autoinc`.
    """
    return (
        "SELECT NAME, AUTOINC FROM information_schema.INNODB_SYS_TABLESTATS "
        f"WHERE NAME LIKE {_string(_innodb_prefix(database) + '%')}"
    )


def _innodb_prefix(database: str) -> str:
    """``database/`` as a LIKE pattern's literal start (InnoDB names a table ``database/table``)."""
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "/"


def read_autoinc(conn: Any, database: str, blueprint: Blueprint, found: list[tuple[Any, ...]]) -> dict[str, int | None]:
    """The counters of the blueprint's ``AUTO_INCREMENT`` tables, from :func:`autoinc_statement`'s rows.

    Tables InnoDB does not hold (or holds unopened, counter 0) and names InnoDB spells
    differently (not plain letters, digits and ``_``) are read from ``TABLES``, in one query.
    """
    loaded = {str(name).partition("/")[2]: int(auto) for name, auto in found}
    now: dict[str, int | None] = {}
    unknown: list[str] = []
    for table in blueprint.auto_increment:
        value = loaded.get(table, 0) if _PLAIN.fullmatch(table) else 0
        if value:
            now[table] = value
        else:
            unknown.append(table)
    if unknown:
        now.update(counters(conn, database, unknown))
    return now


def after_rollback_script(blueprint: Blueprint, database: str, now: dict[str, int | None]) -> list[str]:
    """``ALTER TABLE ... AUTO_INCREMENT`` for the tables whose counter (``now``) a rolled-back insert moved."""
    fixes = _auto_increment_fixes(blueprint, now)
    return [f"USE {q(database)}", *fixes] if fixes else []


def _string(value: str) -> str:
    return literal(value)


def signature_statements(database: str) -> list[str]:
    """Two queries whose rows change when a table, view or column is created, dropped or altered."""
    db = _string(database)
    return [
        "SELECT MD5(GROUP_CONCAT(CONCAT_WS(':', TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, "
        "IFNULL(COLUMN_DEFAULT, '-'), EXTRA) ORDER BY TABLE_NAME, ORDINAL_POSITION SEPARATOR ',')) "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db}",
        "SELECT MD5(GROUP_CONCAT(CONCAT(TABLE_NAME, ':', TABLE_TYPE) ORDER BY TABLE_NAME)) "
        f"FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db}",
    ]


def signature_of(found: list[list[tuple[Any, ...]]]) -> str:
    return hashlib.sha256("|".join(str(r[0][0]) for r in found).encode()).hexdigest()[:16]


def schema_signature(conn: Any, database: str) -> str:
    """The columns, tables, views and user triggers of ``database``, hashed (see :func:`signature_of`)."""
    return signature_of(results(conn, [*signature_statements(database), triggers_statement(database)]))


def sessions_statement(database: str) -> str:
    """Sessions on ``database`` but this one: id, and whether a statement runs on it."""
    return (
        "SELECT ID, COMMAND = 'Query' FROM information_schema.PROCESSLIST "
        f"WHERE DB = {_string(database)} AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed'"
    )


_TRANSACTION = re.compile(r"---TRANSACTION [^\n]*\bACTIVE\b.*?\b(?:MariaDB|MySQL) thread id (\d+)", re.S)


def active_transactions(conn: Any) -> set[int]:
    """The sessions holding an InnoDB transaction now, from ``SHOW ENGINE INNODB STATUS``.

    Not ``information_schema.INNODB_TRX``: InnoDB refreshes that at most every 0.1 s, so a
    transaction begun just before the look can be missing from it.
    """
    status = str(rows(conn, "SHOW ENGINE INNODB STATUS")[0][2])
    section = status.partition("LIST OF TRANSACTIONS FOR EACH SESSION:")[2]
    return {int(found) for chunk in section.split("\n---") for found in _TRANSACTION.findall("---" + chunk)}


def sessions_of(conn: Any, listed: list[tuple[Any, ...]], own: frozenset[int]) -> dict[Hashable, bool]:
    """Foreign sessions (not ``own``) -> holds a transaction or runs a statement (InnoDB asked only if any)."""
    found: dict[Hashable, bool] = {int(i): bool(running) for i, running in listed if int(i) not in own}
    if found:
        active = active_transactions(conn)
        found = {i: running or i in active for i, running in found.items()}
    return found


# -- write tracking ---------------------------------------------------------------------------------


def track_database(database: str) -> str:
    """The companion database where ``database``'s write notes go (never the app's own)."""
    return f"{database}_w"


def tracking_script(database: str, tables: Iterable[str]) -> list[str]:
    """Row triggers on every table noting, in the companion database, which table another connection wrote."""
    track = q(track_database(database))
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {track}",
        f"CREATE TABLE IF NOT EXISTS {track}.`dirty` (id bigint AUTO_INCREMENT PRIMARY KEY, tbl varchar(64) NOT NULL)"
        " ENGINE=InnoDB",
        f"USE {q(database)}",
    ]
    for table in tables:
        digest = hashlib.sha256(table.encode()).hexdigest()[:12]
        for event, letter in (("INSERT", "i"), ("UPDATE", "u"), ("DELETE", "d")):
            trigger = q(f"{OWN}w{letter}_{digest}")
            statements.append(f"DROP TRIGGER IF EXISTS {trigger}")
            statements.append(
                f"CREATE TRIGGER {trigger} AFTER {event} ON {q(table)} FOR EACH ROW "
                f"IF @dbscope_quiet IS NULL THEN INSERT INTO {track}.`dirty` (tbl) VALUES ({literal(table)}); END IF"
            )
    return statements


#: (the last write note's id, the tables' InnoDB ids): a ``TRUNCATE`` fires no trigger but gives the table a new id
Mark = tuple[int, str]


def writes_statement(database: str, since: int) -> str:
    """The last write note's id and the tables noted after ``since`` (an index range, not the whole list)."""
    track = f"{q(track_database(database))}.`dirty`"
    return (
        f"SELECT (SELECT IFNULL(MAX(id), 0) FROM {track}), "
        f"(SELECT GROUP_CONCAT(DISTINCT tbl ORDER BY tbl) FROM {track} WHERE id > {int(since)})"
    )


def ids_statement(database: str) -> str:
    """The tables' InnoDB ids (a ``TRUNCATE`` or a rebuilding ``ALTER`` gives a table a new one)."""
    return (
        "SELECT GROUP_CONCAT(CONCAT(NAME, '=', TABLE_ID) ORDER BY NAME) FROM information_schema.INNODB_SYS_TABLES "
        f"WHERE NAME LIKE {_string(_innodb_prefix(database) + '%')}"
    )


def mark_statements(database: str, since: int) -> list[str]:
    """The write notes after ``since`` (and the last one's id), then the tables' InnoDB ids."""
    return [writes_statement(database, since), ids_statement(database)]


def read_writes(found: list[list[tuple[Any, ...]]], mark: Mark | None) -> tuple[Mark, set[str], bool]:
    """From :func:`mark_statements`' rows: the new mark, the tables noted since ``mark``, whether an id changed."""
    (last, tables), ids = found[0][0], str(found[1][0][0] or "")
    written = set(str(tables).split(",")) if tables and mark is not None else set()
    return (int(last), ids), written, mark is not None and ids != mark[1]


def read_mark(found: list[list[tuple[Any, ...]]], mark: Mark | None) -> tuple[Mark, str | None]:
    """The new mark, and what was written since ``mark`` (None: nothing), from :func:`mark_statements`' rows."""
    new, written, rebuilt = read_writes(found, mark)
    if rebuilt:
        written.add("a table truncated or rebuilt")
    return new, ", ".join(sorted(written)) or None


# -- what changed on the server, cheaply --------------------------------------------------------

#: MariaDB's server-wide counts of the statements that can change a table, view or trigger
#: (or a table's InnoDB id): while their sum stays the same, no schema anywhere on the
#: server changed. Each statement counts when it starts, prepared, in a stored routine or
#: ``EXECUTE IMMEDIATE`` alike, and failed ones too.
DDL_COUNTERS = (
    "COM_ALTER_DB",
    "COM_ALTER_DB_UPGRADE",
    "COM_ALTER_SEQUENCE",
    "COM_ALTER_TABLE",
    "COM_CREATE_DB",
    "COM_CREATE_INDEX",
    "COM_CREATE_SEQUENCE",
    "COM_CREATE_TABLE",
    "COM_CREATE_TRIGGER",
    "COM_CREATE_VIEW",
    "COM_DROP_DB",
    "COM_DROP_INDEX",
    "COM_DROP_SEQUENCE",
    "COM_DROP_TABLE",
    "COM_DROP_TRIGGER",
    "COM_DROP_VIEW",
    "COM_OPTIMIZE",
    "COM_RENAME_TABLE",
    "COM_REPAIR",
    "COM_TRUNCATE",
)
#: sessions reach a database by connecting (CONNECTIONS) or by ``USE``/``COM_INIT_DB`` (COM_CHANGE_DB)
SESSION_COUNTERS = ("CONNECTIONS", "COM_CHANGE_DB")

#: the statements that can add or remove a trigger (dropping or renaming its table, or its database, does)
TRIGGER_COUNTERS = ("COM_CREATE_TRIGGER", "COM_DROP_TRIGGER", "COM_DROP_TABLE", "COM_RENAME_TABLE", "COM_DROP_DB")

#: (schema statements, connections, database changes, trigger-changing statements), server-wide,
#: see :func:`gate_statement`
Gate = tuple[int, int, int, int]

_DDL_WORDS = frozenset({"ALTER", "CREATE", "DROP", "OPTIMIZE", "RENAME", "REPAIR", "TRUNCATE"})


@functools.cache
def gate_statement() -> str:
    """One row: the sums of :data:`DDL_COUNTERS`, CONNECTIONS and COM_CHANGE_DB (~0.2 ms, nothing opened).

    Made once: every look sends it, two or three times a test.
    """
    ddl = ", ".join(literal(name) for name in DDL_COUNTERS)
    every = ", ".join(literal(name) for name in (*DDL_COUNTERS, *SESSION_COUNTERS))
    return (
        f"SELECT SUM(IF(VARIABLE_NAME IN ({ddl}), VARIABLE_VALUE, 0)), "
        "SUM(IF(VARIABLE_NAME = 'CONNECTIONS', VARIABLE_VALUE, 0)), "
        "SUM(IF(VARIABLE_NAME = 'COM_CHANGE_DB', VARIABLE_VALUE, 0)), "
        f"SUM(IF(VARIABLE_NAME IN ({', '.join(literal(name) for name in TRIGGER_COUNTERS)}), VARIABLE_VALUE, 0)) "
        f"FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ({every})"
    )


def read_gate(found: list[tuple[Any, ...]]) -> Gate:
    ddl, connections, change_db, triggers = found[0]
    return int(ddl or 0), int(connections or 0), int(change_db or 0), int(triggers or 0)


_TRIGGER_WORDS = (
    ("CREATE", "TRIGGER"),
    ("DROP", "TRIGGER"),
    ("DROP", "TABLE"),
    ("RENAME", "TABLE"),
    ("DROP", "DATABASE"),
)


def own_count(statements: Iterable[str]) -> Gate:
    """What ``statements`` (dbscope's own) add to the :func:`gate_statement` counts."""
    ddl = use = triggers = 0
    for statement in statements:
        words = tuple(statement.upper().split(None, 2)[:2])
        word = words[0] if words else ""
        ddl += word in _DDL_WORDS
        use += word == "USE"
        triggers += words in _TRIGGER_WORDS
    return ddl, 0, use, triggers


def triggers_statement(database: str) -> str:
    """The user's triggers (not dbscope's), table by table: part of the schema's signature.

    MariaDB parses every table's trigger file to list them (2.5-7 ms on 30 tables): a look
    reads them only when :data:`TRIGGER_COUNTERS` moved since it last did.
    """
    return (
        "SELECT GROUP_CONCAT(CONCAT(EVENT_OBJECT_TABLE, '.', TRIGGER_NAME, ':', ACTION_TIMING, ':', "
        "EVENT_MANIPULATION) ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME) FROM information_schema.TRIGGERS "
        f"WHERE TRIGGER_SCHEMA = {_string(database)} AND TRIGGER_NAME NOT LIKE 'dbscope\\_%'"
    )


def busy_statement() -> str:
    """How many other sessions on the server run a statement, or are connecting, now."""
    return (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon')"
    )
