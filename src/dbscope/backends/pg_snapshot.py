"""Restore a database's contents to its template's, in place (the ``reset`` strategy).

PostgreSQL cannot copy rows between databases without an extension (dblink,
postgres_fdw), and dropping and re-creating the database would break the connections
an application keeps open. So the template's data is read once, as binary ``COPY``
buffers, from a throwaway clone (the template itself accepts no connections), and a
restore is, in one transaction on the database:

1. drop tables the test created (they are not in the template);
2. empty every table of the template: ``DELETE`` (children first) for tables under
   :data:`TRUNCATE_ABOVE_BYTES`, ``TRUNCATE ... CASCADE`` for bigger ones. TRUNCATE creates
   a new file for every table and index, which on a disk (ext4) makes it far slower than
   deleting a small table's rows; the dead rows DELETE leaves are few and autovacuum
   reclaims them (``tests/test_postgresql.py`` prints a restore's time on the 30-table
   benchmark schema);
3. ``COPY ... FROM STDIN (FORMAT binary)`` the template's rows back, with triggers off:
   ``session_replication_role = replica`` for a superuser (user triggers and foreign-key
   checks do not fire), else ``ALTER TABLE ... DISABLE TRIGGER USER`` and tables in
   foreign-key order;
4. ``setval`` every sequence to the template's value.

Only the tables written: where the worker's database has write tracking (statement
triggers ``ENABLE ALWAYS`` on every table, :func:`install_write_tracking`: they fire for
every session, for ``TRUNCATE``, for the writes of user triggers and of foreign-key
cascades, and under ``session_replication_role = replica``) and dbscope knows the database
held the snapshot when the marks were last emptied, steps 2-4 touch only the tables marked
since (plus, for a role that is not superuser, the tables holding rows that reference
them, and for a TRUNCATE every referencing table: see :func:`_restore_set`) and the
sequences that moved. Anything unproven (a table without its enabled trigger, inheritance
or partitions, an unknown starting point, the unlogged tracking tables emptied by a crash
of the server) restores every table, as above.

Baseline copies: with write tracking, the first restore to a snapshot also writes its rows
into unlogged tables in the worker's database (``dbscope_track.base_<n>``, a marker row
in ``dbscope_track.baseline`` names the snapshot and the tables' oids), and step 3 becomes
``INSERT ... SELECT`` from them: no ``COPY`` round trip per table, so the statements after
the look go in one pipeline. For a superuser (whose DDL an event trigger counts), that
restore also writes a PL/pgSQL function holding a partial restore's statements for every
table; the later restores are one call of it, one round trip: it locks, checks that no DDL
was counted since dbscope last read the catalog and that the copies are the snapshot's,
takes the marks and restores those tables and the sequences that moved; when it cannot
prove that is enough (DDL, a written table big enough for TRUNCATE) it changes nothing and
the restore goes the long way above.

Open connections stay open. The restore first takes ``EXCLUSIVE`` locks on every table:
it waits (up to ``lock_timeout``) for a transaction that wrote and is still open, and
writers wait for the restore; readers are never blocked. Schema changes other than new tables (an added column keeps its
default; a dropped table is an error) are not undone.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from ..errors import CleanupError

__all__ = [
    "SCHEMA_SIGNATURE",
    "Catalog",
    "changed_sequences",
    "ddl_count",
    "TRACK_SCHEMA",
    "Snapshot",
    "install_write_tracking",
    "Restored",
    "restore",
    "restore_sequences",
    "take_snapshot",
    "take_write_marks",
    "WriteTracking",
]

Table = tuple[str, str]  # (schema, name)

#: Where the rollback strategy records which tables other sessions wrote (in the worker's
#: database only, never in a template): an unlogged table filled by statement triggers.
TRACK_SCHEMA = "dbscope_track"
_TRACK_TRIGGER = "dbscope_note"  # on every table of the worker's database
_USER_RELATIONS = (
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '{TRACK_SCHEMA}') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)
_EMPTY_BINARY_COPY = 21  # header (19 bytes) + trailer (2 bytes)
#: Tables bigger than this are emptied with TRUNCATE (new files), smaller ones with DELETE.
TRUNCATE_ABOVE_BYTES = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """The template's rows and sequence values, and what a restore needs to know."""

    tables: tuple[Table, ...]  # every table, parents before children (foreign keys)
    columns: dict[Table, tuple[str, ...]]
    data: dict[Table, bytes]  # binary COPY of each non-empty table
    sequences: tuple[tuple[Table, int, bool], ...]  # (sequence, last_value, is_called)
    trigger_tables: tuple[Table, ...]  # tables with user triggers
    superuser: bool
    #: each table's referencing tables (foreign keys), for a restore of some tables only
    referencers: dict[Table, tuple[Table, ...]] = field(default_factory=dict)
    #: some table inherits from another (or is a partition): a write to the parent reaches the
    #: children without firing their statement triggers, so every restore restores every table
    inherits: bool = True
    #: some table has rewrite rules: an INSERT could be rewritten, so rows go back by COPY (see restore)
    rules: bool = True
    #: names this snapshot's rows in the worker database's baseline copies (see restore)
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.data.values())


def _ident(table: Table) -> sql.Identifier:
    return sql.Identifier(*table)


def _tables(conn: psycopg.Connection[Any]) -> list[Table]:
    return [
        (str(s), str(n)) for s, n in conn.execute(f"SELECT n.nspname, c.relname {_USER_RELATIONS} AND c.relkind = 'r'")
    ]


def _references(conn: psycopg.Connection[Any], tables: list[Table]) -> dict[Table, set[Table]]:
    """Each table's referenced tables (its foreign keys' targets, itself left out)."""
    edges: dict[Table, set[Table]] = {t: set() for t in tables}
    for cs, cn, ps, pn in conn.execute(
        "SELECT cn.nspname, cc.relname, pn.nspname, pc.relname FROM pg_constraint k "
        "JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace "
        "JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace "
        "WHERE k.contype = 'f'"
    ):
        child, parent = (str(cs), str(cn)), (str(ps), str(pn))
        if child in edges and parent in edges and child != parent:
            edges[child].add(parent)
    return edges


def _fk_order(edges: dict[Table, set[Table]]) -> list[Table]:
    """Tables with every referenced table before the ones referencing it (cycles: any order)."""
    tables = list(edges)
    ordered: list[Table] = []
    state: dict[Table, int] = {}

    def visit(table: Table) -> None:
        if state.get(table):
            return  # done, or on the current path (a cycle)
        state[table] = 1
        for parent in sorted(edges[table]):
            visit(parent)
        state[table] = 2
        ordered.append(table)

    for table in sorted(tables):
        visit(table)
    return ordered


#: Changes whenever a relation or column of the user's schemas is created, dropped or altered.
SCHEMA_SIGNATURE = (
    "SELECT md5(coalesce(string_agg(concat_ws(':', c.oid, c.relkind, a.attnum, a.attname, a.atttypid), ','"
    " ORDER BY c.oid, a.attnum), '')) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    f"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '{TRACK_SCHEMA}') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
)


def install_write_tracking(conn: psycopg.Connection[Any], *, superuser: bool) -> bool:
    """Statement triggers on every table that note, in ``dbscope_track.dirty``, each table written.

    Writes inside a transaction that is rolled back leave no note; what another session
    commits (the app's own engine) stays noted, even a TRUNCATE or a cascade. The functions
    run as their owner (dbscope's role), so an app's role needs no privilege on them. For a
    superuser, an event trigger also counts DDL in ``dbscope_track.ddl`` (see
    :func:`ddl_count`); True when it does.
    """
    track = sql.Identifier(TRACK_SCHEMA)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(track))
        # no unique key: one session's uncommitted note must never make another's write wait for it
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {}.dirty (tbl regclass NOT NULL)").format(track))
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}.note() RETURNS trigger LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog AS "
                "$note$ BEGIN INSERT INTO {}.dirty SELECT TG_RELID WHERE NOT EXISTS "
                "(SELECT FROM {}.dirty WHERE tbl = TG_RELID); RETURN NULL; END $note$"
            ).format(track, track, track)
        )
        for table in _tables(conn):
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {}.note()"
                ).format(sql.Identifier(_TRACK_TRIGGER), _ident(table), track)
            )
            # ALWAYS: also under session_replication_role = replica (a superuser's bulk load)
            conn.execute(
                sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(_ident(table), sql.Identifier(_TRACK_TRIGGER))
            )
        # the baseline copies' marker (see restore): its row says the unlogged tables are intact
        # (a crash empties them, the write marks with them) and whose rows the copies hold
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {}.baseline (copies text NOT NULL)").format(track))
        conn.execute(
            sql.SQL("INSERT INTO {}.baseline SELECT '' WHERE NOT EXISTS (SELECT FROM {}.baseline)").format(track, track)
        )
        if not superuser:  # event triggers are a superuser's: the schema is then compared in full each time
            return False
        # a row per DDL command, not a counter to update: no row lock for two sessions to wait on
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {}.ddl (at timestamptz DEFAULT now())").format(track))
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}.count_ddl() RETURNS event_trigger LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog AS "
                "$count$ BEGIN INSERT INTO {}.ddl DEFAULT VALUES; END $count$"
            ).format(track, track)
        )
        conn.execute(sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(_TRACK_TRIGGER)))
        conn.execute(
            sql.SQL("CREATE EVENT TRIGGER {} ON ddl_command_end EXECUTE FUNCTION {}.count_ddl()").format(
                sql.Identifier(_TRACK_TRIGGER), track
            )
        )
        # ALWAYS: DDL under session_replication_role = replica is counted too (a restore's own, a test's)
        conn.execute(sql.SQL("ALTER EVENT TRIGGER {} ENABLE ALWAYS").format(sql.Identifier(_TRACK_TRIGGER)))
    return True


def ddl_count(conn: psycopg.Connection[Any]) -> int:
    """How many DDL commands committed in this database since tracking began (see install_write_tracking)."""
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}.ddl").format(sql.Identifier(TRACK_SCHEMA))).fetchone()
    return int(row[0]) if row else 0


def changed_sequences(conn: psycopg.Connection[Any], snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with only the sequences whose value now differs from it (one query)."""
    current = {
        (str(schema), str(name)): (None if value is None else int(value))
        for schema, name, value in conn.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences")
    }
    changed = tuple(
        (seq, value, called)
        for seq, value, called in snapshot.sequences
        if current.get(seq, -1) != (value if called else None)
    )
    return replace(snapshot, sequences=changed)


@dataclass(frozen=True)
class Glance:
    """What :func:`glance` read: the DDL count, the tables written, the foreign sessions."""

    ddl: int | None  # None: DDL is not counted here
    written: list[str]
    written_oids: list[int]  # the same tables' oids (what a restore of only those needs)
    sessions: dict[int, bool]  # pid -> holds a transaction


#: one statement with one parameter, so psycopg prepares it once it has run a few times
_GLANCE = (
    "WITH written AS (DELETE FROM {track}.dirty RETURNING tbl::text AS name, tbl::oid AS id) "
    "SELECT {ddl}, ARRAY(SELECT DISTINCT name FROM written ORDER BY 1), "
    "ARRAY(SELECT DISTINCT id FROM written), coalesce(a.pids, '{{}}'), "
    "coalesce(a.busy, '{{}}') FROM (SELECT array_agg(pid ORDER BY pid) AS pids, "
    "array_agg(coalesce(state = 'active' OR position('transaction' IN state) > 0, false) ORDER BY pid) AS busy "
    "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
    "AND pid <> ALL(%s::int[])) AS a"
)


def glance(conn: psycopg.Connection[Any], *, own: Collection[int], ddl_counted: bool) -> Glance:
    """The DDL count, the tables other sessions wrote (emptying the list) and the foreign sessions: one query.

    The schema signature is not read here: planning it costs more than all the rest, and
    where DDL is counted the count says when it is needed.
    """
    track = sql.Identifier(TRACK_SCHEMA)
    ddl = sql.SQL("(SELECT count(*) FROM {}.ddl)").format(track) if ddl_counted else sql.SQL("NULL::bigint")
    row = conn.execute(sql.SQL(_GLANCE).format(track=track, ddl=ddl), [sorted(own)]).fetchone()
    assert row is not None
    ddl_count, written, oids, pids, busy = row
    return Glance(
        ddl=None if ddl_count is None else int(ddl_count),
        written=[str(name) for name in written],
        written_oids=[int(oid) for oid in oids],
        sessions={int(pid): bool(holds) for pid, holds in zip(pids, busy, strict=True)},
    )


def take_write_marks(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables other sessions wrote since the last look, emptying the list (see install_write_tracking)."""
    statement = sql.SQL("DELETE FROM {}.dirty RETURNING tbl::text").format(sql.Identifier(TRACK_SCHEMA))
    return sorted({str(row[0]) for row in conn.execute(statement)})


def restore_sequences(conn: psycopg.Connection[Any], snapshot: Snapshot) -> None:
    """Put every sequence back to the snapshot's value (``setval`` is not undone by a rollback)."""
    if snapshot.sequences:
        conn.execute(
            sql.SQL("SELECT {}").format(
                sql.SQL(", ").join(
                    sql.SQL("setval({}, {}, {})").format(
                        sql.Literal(sql.Identifier(*seq).as_string(conn)), sql.Literal(value), sql.Literal(called)
                    )
                    for seq, value, called in snapshot.sequences
                )
            )
        )


def take_snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """Read every table's rows and every sequence's value from ``conn``'s database."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    superuser = bool(row and row[0])
    edges = _references(conn, _tables(conn))
    tables = _fk_order(edges)
    referencers: dict[Table, list[Table]] = {t: [] for t in tables}
    for child, parents in edges.items():
        for parent in parents:
            referencers[parent].append(child)
    inherit_row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '{TRACK_SCHEMA}'))"
    ).fetchone()
    rules_row = conn.execute(
        f"SELECT EXISTS (SELECT {_USER_RELATIONS} AND c.relkind = 'r' AND c.relhasrules)"
    ).fetchone()
    columns: dict[Table, list[str]] = {t: [] for t in tables}
    for schema, name, column in conn.execute(
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "ORDER BY n.nspname, c.relname, a.attnum"
    ):
        key = (str(schema), str(name))
        if key in columns:
            columns[key].append(str(column))
    data: dict[Table, bytes] = {}
    with conn.cursor() as cur:
        for table in tables:
            buffer = bytearray()
            statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
                _ident(table), sql.SQL(", ").join(map(sql.Identifier, columns[table]))
            )
            with cur.copy(statement) as copy:
                for chunk in copy:
                    buffer += chunk
            if len(buffer) > _EMPTY_BINARY_COPY:
                data[table] = bytes(buffer)
    sequences: list[tuple[Table, int, bool]] = []
    for schema, name in conn.execute(
        f"SELECT n.nspname, c.relname {_USER_RELATIONS} AND c.relkind = 'S' ORDER BY 1, 2"
    ):
        seq = (str(schema), str(name))
        value = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(_ident(seq))).fetchone()
        assert value is not None
        sequences.append((seq, int(value[0]), bool(value[1])))
    trigger_tables = [
        (str(s), str(n))
        for s, n in conn.execute(
            "SELECT DISTINCT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND t.tgname <> %s "
            "ORDER BY 1, 2",
            [_TRACK_TRIGGER],
        )
    ]
    return Snapshot(
        tuple(tables),
        {t: tuple(c) for t, c in columns.items()},
        data,
        tuple(sequences),
        tuple(t for t in trigger_tables if t in columns),
        superuser,
        {t: tuple(sorted(c)) for t, c in referencers.items()},
        bool(inherit_row and inherit_row[0]),
        bool(rules_row and rules_row[0]),
    )


#: A restore's transaction settings: its lock wait (a parameter), no WAL flush wait, and for a
#: superuser no triggers or foreign-key actions while the rows go back.
_RESTORE_SETTINGS = "SELECT set_config('lock_timeout', %s, true), set_config('synchronous_commit', 'off', true)"
_RESTORE_SETTINGS_SUPERUSER = (
    "SELECT set_config('lock_timeout', %s, true), set_config('synchronous_commit', 'off', true), "
    "set_config('session_replication_role', 'replica', true)"
)


@dataclass(frozen=True)
class Catalog:
    """What a restore read from the catalog: the next restore reuses it while no DDL was counted since."""

    ddl: int  # the DDL count (see ddl_count) when it was read
    oids: dict[Table, int]  # every table of the user's schemas
    tracked: frozenset[Table]  # those whose tracking trigger is enabled ALWAYS
    copies: str = ""  # the baseline copies' marker it read (see _copies_marker)


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did."""

    dropped: bool  # it dropped tables the snapshot lacks
    tables: tuple[Table, ...]  # the tables it emptied and filled again
    partial: bool  # it restored only the tables written (and those a restore of them reaches)
    untracked: tuple[Table, ...] = ()  # (with tracking) tables without their enabled tracking trigger
    catalog: Catalog | None = None  # what the next restore may reuse (None: it reads the catalog)
    copied: bool = False  # the rows went back from the baseline copies in the database, not by COPY
    one_call: bool = False  # in one round trip, by the function the copies came with (see restore)


@dataclass
class WriteTracking:
    """One database's write tracking (:func:`install_write_tracking`) and what its restores carry over.

    ``clean_as`` is the snapshot the database held when the write marks were last emptied
    (taken, or committed by the last restore), ``written`` the tables written since that
    looks (:func:`glance`) took from the marks: a restore to ``clean_as`` restores only those
    and the ones still marked. Anything else (no tracking, another snapshot, a restore that
    failed half-way) restores every table.
    """

    installed: bool = False
    ddl_counted: bool = False  # an event trigger counts DDL (a superuser): ``catalog`` is reused until some
    clean_as: Snapshot | None = None
    written: set[int] = field(default_factory=set)
    catalog: Catalog | None = None  # what the last restore read from the catalog

    def install(self, conn: psycopg.Connection[Any], *, superuser: bool) -> None:
        self.ddl_counted = install_write_tracking(conn, superuser=superuser)
        self.catalog = None  # the tracking's own DDL: the next restore reads the catalog
        self.installed = True

    def held(self, snapshot: Snapshot | None) -> None:
        """The database holds ``snapshot`` now (None: not known); marks left unread only cost a restore."""
        self.clean_as, self.written = snapshot, set()

    def restore(
        self, conn: psycopg.Connection[Any], snapshot: Snapshot, *, database: str, lock_timeout_s: float
    ) -> Restored:
        """:func:`restore` with what this tracking knows; ``installed`` is False after it when a
        table lacked its tracking trigger (the caller installs it again)."""
        written = set(self.written) if self.clean_as is snapshot and self.installed else None
        catalog, self.clean_as, self.catalog = self.catalog, None, None  # until this restore commits
        done = restore(
            conn,
            snapshot,
            database=database,
            lock_timeout_s=lock_timeout_s,
            written=written,
            tracking=self.installed,
            ddl_counted=self.ddl_counted,
            catalog=catalog,
        )
        self.held(snapshot)
        self.catalog = done.catalog
        if done.untracked:  # created later, or a test disabled its triggers
            self.installed = False
        return done


def _restore_set(snapshot: Snapshot, written: set[Table], sizes: dict[Table, int]) -> tuple[set[Table], set[Table]]:
    """The tables to restore when ``written`` are the only ones that differ from the snapshot, and
    which of them to TRUNCATE.

    A superuser's restore runs with ``session_replication_role = replica``: emptying a table
    fires no foreign-key action or check, and the rows put back have the keys the unchanged
    tables referenced, so the written tables are enough. Otherwise deleting a table's rows
    would hit (cascade into, or fail on) rows of the tables referencing it: those that hold
    rows are restored too, and so on. TRUNCATE (big tables) needs every referencing table in
    the same statement, empty or not, whoever restores.
    """
    restore: set[Table] = set()
    truncate: set[Table] = set()
    pending = [(table, sizes.get(table, 0) > TRUNCATE_ABOVE_BYTES) for table in written]
    while pending:
        table, truncated = pending.pop()
        if table in restore and (table in truncate or not truncated):
            continue
        restore.add(table)
        if truncated:
            truncate.add(table)
        for child in snapshot.referencers.get(table, ()):
            if truncated:
                pending.append((child, True))
            elif not snapshot.superuser and sizes.get(child, 0) > 0:
                pending.append((child, sizes[child] > TRUNCATE_ABOVE_BYTES))
    return restore, truncate


#: the catalog a restore reads when it cannot reuse the last one: every table with its oid and whether
#: its tracking trigger is enabled ALWAYS, every table's size, every sequence's value
_RELATIONS = (
    "SELECT c.oid, n.nspname, c.relname, EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid "
    f"AND t.tgname = '{_TRACK_TRIGGER}' AND t.tgenabled = 'A') {_USER_RELATIONS} AND c.relkind = 'r'"
)
_SIZES = f"SELECT c.oid, pg_relation_size(c.oid) {_USER_RELATIONS} AND c.relkind = 'r'"
_SEQUENCES = "SELECT schemaname, sequencename, last_value FROM pg_sequences"
#: a tracked restore's look, once every table is locked, in one statement: the DDL count, the copies'
#: marker, the tables written (the marks, emptied, and the oids given) with their sizes, and the
#: given sequences' values (NULL: not called yet)
_RESTORE_LOOK = (
    "WITH marks AS (DELETE FROM {track}.dirty RETURNING tbl::oid AS id), "
    "dirty AS (SELECT id FROM marks UNION SELECT unnest(%s::oid[])) "
    "SELECT {ddl}, (SELECT copies FROM {track}.baseline LIMIT 1), "
    "ARRAY(SELECT id FROM dirty ORDER BY id), ARRAY(SELECT coalesce(pg_relation_size(id), 0) FROM dirty ORDER BY id), "
    "ARRAY(SELECT pg_sequence_last_value(to_regclass(s)) FROM unnest(%s::text[]) WITH ORDINALITY AS u(s, i) ORDER BY i)"
)
_COPY_NAME = "base_{}"  # the baseline copy of the snapshot's i-th table, in TRACK_SCHEMA


def _copy_of(index: int) -> sql.Identifier:
    return sql.Identifier(TRACK_SCHEMA, _COPY_NAME.format(index))


#: SQLSTATE the one-call restore raises when it cannot prove it is enough: the caller restores the long way
_LONG_WAY = "DBS01"
_FAST_RESTORE = "restore_written"  # the one-call restore's function, in TRACK_SCHEMA
_ONE_CALL = f"SELECT {TRACK_SCHEMA}.{_FAST_RESTORE}(%s::oid[], %s, %s)"


def _copies_marker(snapshot: Snapshot, oids: dict[Table, int]) -> str:
    """What the baseline copies' marker says when they (and the one-call restore, which names the
    tables by oid) are ``snapshot``'s, made for tables with these ``oids``."""
    tables = ",".join(str(oids.get(table, 0)) for table in snapshot.tables)
    return f"{snapshot.token}:{hashlib.md5(tables.encode(), usedforsecurity=False).hexdigest()}"


def _fast_restore_function(conn: psycopg.Connection[Any], snapshot: Snapshot, oids: dict[Table, int]) -> sql.Composed:
    """``CREATE FUNCTION`` of a superuser's one-call restore of ``snapshot`` (see :func:`restore`).

    Its statements are static, so PL/pgSQL plans each once a session; its names start with
    ``dbscope_`` and a column wins over them (``#variable_conflict use_column``), so no table's
    column can clash with them. It raises :data:`_LONG_WAY`
    (having changed nothing) when DDL was counted since ``oids`` were read, when the baseline
    copies are not ``snapshot``'s (or a crash emptied them) or a written table is big enough for
    TRUNCATE; otherwise it restores the tables written (the marks and the oids given) from the
    copies, the sequences that moved, and returns the tables' oids.
    """
    track = sql.Identifier(TRACK_SCHEMA)
    long_way = sql.SQL("RAISE EXCEPTION USING ERRCODE = {}, MESSAGE = {}")
    body: list[sql.Composable] = [
        # the restore's settings (see _RESTORE_SETTINGS_SUPERUSER), for the statement's own transaction
        sql.SQL(
            "#variable_conflict use_column\nDECLARE dbscope_dirty oid[]; dbscope_oid oid; "
            "BEGIN PERFORM set_config('lock_timeout', dbscope_lock_wait, true), "
            "set_config('synchronous_commit', 'off', true), set_config('session_replication_role', 'replica', true); "
            "LOCK TABLE {} IN EXCLUSIVE MODE;"
        ).format(sql.SQL(", ").join(map(_ident, snapshot.tables))),
        sql.SQL(
            "IF (SELECT count(*) FROM {}.ddl) <> dbscope_ddl "
            "OR NOT EXISTS (SELECT FROM {}.baseline WHERE copies = {}) THEN {}; END IF;"
        ).format(
            track,
            track,
            sql.Literal(_copies_marker(snapshot, oids)),
            long_way.format(sql.Literal(_LONG_WAY), sql.Literal("dbscope: the catalog or the copies changed")),
        ),
        sql.SQL(
            "WITH marks AS (DELETE FROM {}.dirty RETURNING tbl::oid AS id) "
            "SELECT ARRAY(SELECT id FROM marks UNION SELECT unnest(dbscope_written)) INTO dbscope_dirty;"
        ).format(track),
        sql.SQL(
            "FOREACH dbscope_oid IN ARRAY dbscope_dirty LOOP "
            "IF coalesce(pg_relation_size(dbscope_oid), 0) > {} THEN {}; END IF; END LOOP;"
        ).format(
            sql.Literal(TRUNCATE_ABOVE_BYTES),
            long_way.format(sql.Literal(_LONG_WAY), sql.Literal("dbscope: a big table was written")),
        ),
    ]
    for table in reversed(snapshot.tables):  # children before the tables they reference
        body.append(
            sql.SQL("IF {} = ANY(dbscope_dirty) THEN DELETE FROM {}; END IF;").format(
                sql.Literal(oids[table]), _ident(table)
            )
        )
    for index, table in enumerate(snapshot.tables):
        if table in snapshot.data:
            columns = sql.SQL(", ").join(map(sql.Identifier, snapshot.columns[table]))
            body.append(
                sql.SQL(
                    "IF {} = ANY(dbscope_dirty) THEN "
                    "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}; END IF;"
                ).format(sql.Literal(oids[table]), _ident(table), columns, columns, _copy_of(index))
            )
    for seq, value, called in snapshot.sequences:
        name = sql.Literal(sql.Identifier(*seq).as_string(conn))
        body.append(
            sql.SQL(
                "IF pg_sequence_last_value({}::regclass) IS DISTINCT FROM {}::bigint "
                "THEN PERFORM setval({}::regclass, {}, {}); END IF;"
            ).format(name, sql.Literal(value if called else None), name, sql.Literal(value), sql.Literal(called))
        )
    body.append(sql.SQL("DELETE FROM {}.dirty; RETURN dbscope_dirty; END").format(track))
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {}(dbscope_written oid[], dbscope_ddl bigint, dbscope_lock_wait text) "
        "RETURNS oid[] LANGUAGE plpgsql AS {}"
    ).format(sql.Identifier(TRACK_SCHEMA, _FAST_RESTORE), sql.Literal(sql.SQL(" ").join(body).as_string(conn)))


def _make_copies(conn: psycopg.Connection[Any], snapshot: Snapshot, oids: dict[Table, int] | None) -> None:
    """Replace the baseline copies with ``snapshot``'s rows: an unlogged table in TRACK_SCHEMA for each
    table that has rows (in the restore's transaction); given ``oids``, also the one-call restore."""
    old = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relname ~ '^base_[0-9]+$'",
        [TRACK_SCHEMA],
    ).fetchall()
    with conn.pipeline():
        if old:
            conn.execute(
                sql.SQL("DROP TABLE {}").format(
                    sql.SQL(", ").join(sql.Identifier(TRACK_SCHEMA, str(name)) for (name,) in old)
                )
            )
        for index, table in enumerate(snapshot.tables):
            if table in snapshot.data:
                conn.execute(
                    sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                        _copy_of(index), sql.SQL(", ").join(map(sql.Identifier, snapshot.columns[table])), _ident(table)
                    )
                )
    with conn.cursor() as cur:
        for index, table in enumerate(snapshot.tables):
            payload = snapshot.data.get(table)
            if payload is not None:
                with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(_copy_of(index))) as copy:
                    copy.write(payload)
    if oids is not None:
        conn.execute(_fast_restore_function(conn, snapshot, oids))


def restore(
    conn: psycopg.Connection[Any],
    snapshot: Snapshot,
    *,
    database: str,
    lock_timeout_s: float,
    written: Collection[int] | None = None,
    tracking: bool = False,
    ddl_counted: bool = False,
    catalog: Catalog | None = None,
) -> Restored:
    """Put ``snapshot`` back into ``conn``'s database in one transaction (``conn`` is autocommit).

    ``written``: the oids of the tables written since the database last held exactly
    ``snapshot`` (the write marks already taken, see :func:`glance`), or None when that is
    not known. With ``tracking`` (:func:`install_write_tracking` ran here), the marks still
    in ``dbscope_track.dirty`` are read once every table is locked (every writer has
    committed or rolled back by then, and no new one can start) and, given ``written``, only
    those tables are restored (see :func:`_restore_set`). Every table is restored instead
    when that is not proven enough: ``written`` unknown, a table without its enabled
    tracking trigger (created later, or a test disabled its triggers), tables that
    inherit, or the unlogged tracking tables emptied by a crash of the server. The marks of
    the restore's own writes are dropped before it commits.

    With ``tracking``, the rows go back from baseline copies kept in the database (unlogged
    tables in TRACK_SCHEMA, made from the snapshot by the first restore to it): a restore is
    then two round trips, the second a pipeline of ``DELETE`` and ``INSERT ... SELECT`` per
    table. Without it (or where a table has rewrite rules), by ``COPY`` from the snapshot.
    With ``ddl_counted`` (an event trigger counts DDL), ``catalog`` (the last restore's
    :attr:`Restored.catalog`) stands in for the catalog's tables and triggers while the DDL
    count has not moved.
    """
    track = sql.Identifier(TRACK_SCHEMA)
    # synchronous_commit off: a restore waits for no WAL flush (a crash may lose the restore, never
    # corrupt the database; a test database does not outlive a crash of its server anyway)
    settings = _RESTORE_SETTINGS_SUPERUSER if snapshot.superuser else _RESTORE_SETTINGS
    reuse = tracking and ddl_counted and catalog is not None and written is not None and not snapshot.inherits
    # a superuser's restore of a snapshot whose copies and one-call restore are in place: one round trip
    one_call = reuse and snapshot.superuser and not snapshot.rules and catalog is not None
    one_call = one_call and catalog is not None and catalog.copies == _copies_marker(snapshot, catalog.oids)
    looked: tuple[Any, ...] | None = None
    read: tuple[psycopg.Cursor[Any], ...] | None = None
    try:
        if one_call and catalog is not None and written is not None:
            done = _restore_in_one_call(conn, snapshot, lock_timeout_s, catalog, written)
            if done is not None:
                return done
        try:
            # round trips are most of a small restore's cost: a pipeline that locks and looks, and one
            # that restores, in a transaction begun and ended by hand (COPY cannot be pipelined)
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(settings, [f"{int(lock_timeout_s * 1000)}ms"])
                locked = None
                if snapshot.tables:  # wait for writers still in a transaction (bounded), keep new ones out
                    locked = conn.execute(
                        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                            sql.SQL(", ").join(map(_ident, snapshot.tables))
                        )
                    )
                look = None
                if tracking:  # read once every table is locked: every writer has committed or rolled back
                    ddl = sql.SQL("(SELECT count(*) FROM {}.ddl)").format(track) if ddl_counted else sql.SQL("NULL")
                    names = [sql.Identifier(*seq).as_string(conn) for seq, _, _ in snapshot.sequences] if reuse else []
                    look = conn.execute(
                        sql.SQL(_RESTORE_LOOK).format(track=track, ddl=ddl), [sorted(written or ()), names]
                    )
                if not reuse:
                    read = tuple(conn.execute(q) for q in (_RELATIONS, _SIZES, _SEQUENCES))
            looked = look.fetchone() if look is not None else None
        except psycopg.errors.UndefinedTable:
            locked = None  # a table of the snapshot (or dbscope's tracking) is gone: said below
        if locked is None and snapshot.tables:
            conn.execute("ROLLBACK")
            present = set(_tables(conn))
            shown = ", ".join(".".join(t) for t in snapshot.tables if t not in present)
            if not shown:
                raise CleanupError(
                    f"cannot restore {database}: dbscope's write tracking ({TRACK_SCHEMA}.dirty) is gone; "
                    "a test dropped it"
                )
            raise CleanupError(
                f"cannot restore {database} in place: the test dropped table(s) {shown} of the template; "
                "use the clone strategy for tests that change the schema"
            )
        ddl_now: int | None = None
        copies: str | None = None  # None: the copies' marker is gone (a crash emptied the unlogged tables)
        dirty_sizes: dict[int, int] = {}
        if looked is not None:
            ddl_now = None if looked[0] is None else int(looked[0])
            copies = None if looked[1] is None else str(looked[1])
            dirty_sizes = {int(oid): int(size) for oid, size in zip(looked[2], looked[3], strict=True)}
        if (
            reuse
            and catalog is not None
            and looked is not None
            and ddl_now == catalog.ddl
            and copies is not None
            and all(table in catalog.tracked for table in snapshot.tables)
        ):
            # no DDL since the catalog was read: the same tables, all tracked; only what was written matters
            oids, tracked, sizes_by_oid = catalog.oids, catalog.tracked, dirty_sizes
            current = {
                seq: (None if value is None else int(value))
                for (seq, _, _), value in zip(snapshot.sequences, looked[4], strict=True)
            }
        else:
            if read is None:  # DDL since: the catalog again
                with conn.pipeline():
                    read = tuple(conn.execute(q) for q in (_RELATIONS, _SIZES, _SEQUENCES))
            relations, sizes_cursor, sequences_cursor = read
            oids = {}
            tracked_now: set[Table] = set()
            for oid, schema, name, noted in relations.fetchall():
                oids[(str(schema), str(name))] = int(oid)
                if noted:
                    tracked_now.add((str(schema), str(name)))
            tracked = frozenset(tracked_now)
            sizes_by_oid = {int(oid): int(size) for oid, size in sizes_cursor.fetchall()}
            current = {
                (str(schema), str(name)): (None if value is None else int(value))
                for schema, name, value in sequences_cursor.fetchall()
            }
        sizes = {table: sizes_by_oid[oid] for table, oid in oids.items() if oid in sizes_by_oid}
        extra = sorted(set(oids) - set(snapshot.tables))
        partial = (
            tracking
            and copies is not None
            and written is not None
            and not snapshot.inherits
            and all(table in tracked for table in snapshot.tables)
        )
        if partial:
            by_oid = {oids[table]: table for table in snapshot.tables}
            dirty = {by_oid[oid] for oid in dirty_sizes if oid in by_oid}
            chosen, big = _restore_set(snapshot, dirty, sizes)
            tables = [t for t in snapshot.tables if t in chosen]
            sequences = tuple(
                (seq, value, called)
                for seq, value, called in snapshot.sequences
                if current.get(seq, -1) != (value if called else None)
            )
        else:
            tables = list(snapshot.tables)
            big = {t for t in tables if sizes.get(t, 0) > TRUNCATE_ABOVE_BYTES}
            sequences = snapshot.sequences
        chosen_set = set(tables)
        toggled = [] if snapshot.superuser else [t for t in snapshot.trigger_tables if t in chosen_set]
        copied = tracking and not snapshot.rules  # rows back by INSERT ... SELECT from the copies
        marker = _copies_marker(snapshot, oids) if copied else ""
        note = marker if tracking and copies != marker else None  # what the copies' marker is to say now
        if copied and copies != marker:
            fast = ddl_now is not None and snapshot.superuser and not snapshot.inherits
            _make_copies(conn, snapshot, oids if fast else None)
        with conn.pipeline():
            if extra:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.SQL(", ").join(map(_ident, extra))))
            if big:
                truncate = (
                    sql.SQL("TRUNCATE {}") if partial else sql.SQL("TRUNCATE {} CASCADE")
                )  # partial: referencers are in
                conn.execute(truncate.format(sql.SQL(", ").join(map(_ident, sorted(big)))))
            for table in toggled:
                conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(_ident(table)))
            for table in reversed(tables):  # children before the tables they reference
                if table not in big and sizes.get(table, 1) > 0:
                    conn.execute(sql.SQL("DELETE FROM {}").format(_ident(table)))
            if copied:
                for index, table in enumerate(snapshot.tables):  # parents before children
                    if table in chosen_set and table in snapshot.data:
                        columns = sql.SQL(", ").join(map(sql.Identifier, snapshot.columns[table]))
                        conn.execute(
                            sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
                                _ident(table), columns, columns, _copy_of(index)
                            )
                        )
                _finish(conn, snapshot, sequences, toggled, tracked, tracking, note)
        if not copied:
            with conn.cursor() as cur:
                for table in tables:
                    payload = snapshot.data.get(table)
                    if payload is None:
                        continue
                    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                        _ident(table), sql.SQL(", ").join(map(sql.Identifier, snapshot.columns[table]))
                    )
                    with cur.copy(statement) as copy:
                        copy.write(payload)
            with conn.pipeline():
                _finish(conn, snapshot, sequences, toggled, tracked, tracking, note)
        untracked = tuple(t for t in snapshot.tables if t not in tracked) if tracking else ()
        # the restore's own DDL (dropped tables, new copies) moved the DDL count: the next one reads the catalog
        made = copied and copies != marker
        kept = None if ddl_now is None or extra or made else Catalog(ddl_now, oids, tracked, copies or "")
        return Restored(bool(extra), tuple(tables), partial, untracked, kept, copied)
    except psycopg.errors.LockNotAvailable as exc:
        _roll_back(conn)
        holders = ""
        try:
            rows = conn.execute(
                "SELECT pid, coalesce(application_name, ''), state FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE '%transaction%'"
            ).fetchall()
            holders = "; ".join(f"pid {p} ({a or 'no application_name'}, {s})" for p, a, s in rows)
        except psycopg.Error:
            pass
        raise CleanupError(
            f"cannot restore {database}: another connection holds a lock on its tables for longer than "
            f"{lock_timeout_s:g} s{(': ' + holders) if holders else ''}. End the transactions the test "
            "left open (commit or roll back) before the test ends."
        ) from exc
    except BaseException:
        _roll_back(conn)
        raise


def _restore_in_one_call(
    conn: psycopg.Connection[Any],
    snapshot: Snapshot,
    lock_timeout_s: float,
    catalog: Catalog,
    written: Collection[int],
) -> Restored | None:
    """The restore as one call of the function :func:`_fast_restore_function` made: one round trip.

    None (nothing changed) when that function cannot prove it is enough: the caller restores
    the long way.
    """
    try:  # one statement, its own transaction (conn is autocommit): psycopg prepares it after a few
        row = conn.execute(
            _ONE_CALL, [sorted(written), catalog.ddl, f"{int(lock_timeout_s * 1000)}ms"], prepare=True
        ).fetchone()
    except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
        _roll_back(conn)  # a test dropped a table or dbscope's tracking: the long way says what
        return None
    except psycopg.Error as exc:
        if exc.sqlstate != _LONG_WAY:
            raise
        _roll_back(conn)
        return None
    restored = {int(oid) for oid in (row[0] if row else None) or ()}
    tables = tuple(t for t in snapshot.tables if catalog.oids.get(t) in restored)
    return Restored(False, tables, True, (), catalog, True, True)


def _finish(
    conn: psycopg.Connection[Any],
    snapshot: Snapshot,
    sequences: tuple[tuple[Table, int, bool], ...],
    toggled: list[Table],
    tracked: Collection[Table],
    tracking: bool,
    marker: str | None,
) -> None:
    """A restore's last statements, in the caller's pipeline: triggers back on, sequences, marks, COMMIT.

    ``marker``: what the baseline copies now hold, to note (None: unchanged).
    """
    track = sql.Identifier(TRACK_SCHEMA)
    for table in toggled:
        enable = sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(_ident(table))
        if table in tracked:  # ENABLE TRIGGER USER leaves the tracking trigger ENABLE (not ALWAYS)
            enable = sql.SQL("{}, ENABLE ALWAYS TRIGGER {}").format(enable, sql.Identifier(_TRACK_TRIGGER))
        conn.execute(enable)
    restore_sequences(conn, replace(snapshot, sequences=sequences))
    if marker is not None:  # also after a crash emptied the unlogged tables: they are whole again
        conn.execute(sql.SQL("DELETE FROM {}.baseline").format(track))
        conn.execute(sql.SQL("INSERT INTO {}.baseline VALUES (%s)").format(track), [marker])
    if tracking:  # the restore's own writes are not a test's (every table is still locked)
        conn.execute(sql.SQL("DELETE FROM {}.dirty").format(track))
    conn.execute("COMMIT")


def _roll_back(conn: psycopg.Connection[Any]) -> None:
    """End the restore's transaction after an error (it is begun by hand, see :func:`restore`)."""
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")
