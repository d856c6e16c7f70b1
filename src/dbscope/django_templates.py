"""dbscope.django's databases: a template per alias by fingerprint, a clone per process, restores.

No pytest here (``django.py`` is the plugin). Django is imported inside the functions and
typed ``Any`` at its boundary: dbscope itself never depends on Django.

* **Fingerprint** of an alias: Django's version, the alias's settings (engine, name, host,
  port, user, options, the ``TEST`` settings but its per-worker name), the installed apps,
  the routers, ``AUTH_USER_MODEL`` and the bytes of every installed app's models and
  migration files. Any change gives another template; nothing is ever reused stale.
* **SQLite** aliases: the template is the migrated database's image (``serialize()``) in
  the project's ``.dbscope/cache`` (:class:`~dbscope.backends.sqlite.TemplateCache`, one
  build under a file lock while other processes wait and load it). The process's test
  database (Django's own name for it: in memory unless ``TEST NAME`` names a file) is
  filled from the image with SQLite's backup API; a restore is the same copy again.
* **PostgreSQL** aliases: the template is a database ``test_dbscope_tpl_<fingerprint>``
  built under an advisory lock into a temporary name and renamed when complete; the
  process's test database (Django's test name, with pytest-django's ``_gw<N>`` suffix) is
  ``CREATE DATABASE ... TEMPLATE``; a restore is dbscope's in-place reset of only the tables
  written since the last one (dbscope's write tracking, as its own PostgreSQL backend's).
* **MariaDB/MySQL** aliases: the template is a database of the same name, migrated under
  the server's named lock and marked complete last (:class:`MySQLAlias`); the test
  database is a copy made by dbscope's MariaDB blueprint scripts, a restore their restore.
* **Leaks**: each alias lists the connections open to its test database now (SQLite:
  Python's audit events; PostgreSQL: ``pg_stat_activity``; MariaDB: ``PROCESSLIST``), but
  dbscope's own and those it is told are Django's (``django.py`` compares before and after
  each test).
* **dbscope gc**: :func:`template_garbage` lists and drops the templates of fingerprints
  superseded by a newer one of the same alias and database, never one a run uses.

Only databases whose names Django gives the test databases are dropped or written, never
the names in the settings, and a server that is not on this machine is refused unless
``--dbscope-allow-remote``.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import os
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .backends.servers import is_local_host
from .backends.sqlite import WATCH, ConnectionWatch, TemplateCache
from .errors import ConfigError

__all__ = ["AliasDatabase", "TemplateStats", "fingerprint", "open_alias"]

#: bumped when the way a template is built changes: older templates are then never reused
FORMAT = "dbscope.django template 1"
#: the server templates' prefix (PostgreSQL, MariaDB/MySQL): a test_ name, never one a settings NAME or
#: dbscope's own databases use
TEMPLATE_PREFIX = "test_dbscope_tpl_"
#: a template's full name: the prefix and the first 32 hex digits of its fingerprint
TEMPLATE_NAME = re.compile(r"test_dbscope_tpl_[0-9a-f]{32}")
#: how dbscope.django marks a template its own and complete (PostgreSQL: the comment; MariaDB/MySQL: this
#: text is made from the template's dbscope_django_template row): alias, settings' database, fingerprint, when
TEMPLATE_MARK = re.compile(
    r"dbscope\.django template of (?P<alias>\S+) \((?P<database>.*)\) (?P<fingerprint>[0-9a-f]{64})"
    r"(?: made (?P<made>\d+(?:\.\d+)?))?"
)
#: advisory-lock namespace (the first key of the two-key form, "dbju") of "a run uses this template":
#: every process using a template holds it shared for its session; ``dbscope gc`` takes it alone to drop one
PG_IN_USE_LOCK = 0x64626A75

SQLITE_ENGINE = "django.db.backends.sqlite3"
#: how long a restore waits for a transaction a test left open on its tables
RESTORE_LOCK_TIMEOUT_S = 5.0
#: a connection just closed may still be listed by the server while it exits: how long the
#: leak probe looks again (seconds between looks) before it counts one the test opened
EXITING_LOOKS_S = (0.01, 0.02, 0.05, 0.1)
PG_ENGINES = ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2")
MYSQL_ENGINES = ("django.db.backends.mysql",)
#: how long a process waits for another one building the same MariaDB/MySQL template
BUILD_WAIT_S = 600


def _sql() -> Any:
    """psycopg's ``sql`` module, imported only for a PostgreSQL alias."""
    from psycopg import sql

    return sql


@dataclass
class TemplateStats:
    """What one alias cost in one process: the report's figures."""

    alias: str
    engine: str
    template: str
    built: bool = False
    ready_s: float = 0.0
    restores: int = 0
    restore_s: float = 0.0
    restore_times: list[float] = field(default_factory=list)
    #: the restores that restored only the tables written (PostgreSQL's write tracking), and the
    #: tables all restores emptied and filled again (a full restore: every table of the template)
    partial_restores: int = 0
    tables_restored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "engine": self.engine,
            "template": self.template,
            "built": self.built,
            "ready_s": round(self.ready_s, 4),
            "restores": self.restores,
            "restore_s": round(self.restore_s, 6),
            "partial_restores": self.partial_restores,
            "tables_restored": self.tables_restored,
        }


def _module(name: str) -> Any:
    """A Django module, typed Any: dbscope is type-checked without Django or its stubs."""
    return importlib.import_module(name)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def _sources(app: Any, migration_modules: Any) -> list[Path]:
    """The files of ``app`` a template depends on: its models module and its migrations."""
    found: list[Path] = []
    models = getattr(app, "models_module", None)
    models_file = getattr(models, "__file__", None)
    if models_file:
        path = Path(models_file)
        found += _files(path.parent) if path.name == "__init__.py" else [path]
    module = f"{app.name}.migrations"
    if isinstance(migration_modules, dict) and app.label in migration_modules:
        module = migration_modules[app.label]
    if module is None:
        return found
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        found += _files(Path(location))
    return found


def fingerprint(alias: str, *, use_migrations: bool) -> str:
    """The fingerprint of ``alias``'s template (see the module's docstring)."""
    django = _module("django")
    apps = _module("django.apps").apps
    settings = _module("django.conf").settings
    connections = _module("django.db").connections

    digest = hashlib.sha256()

    def add(*parts: Any) -> None:
        for part in parts:
            digest.update(part if isinstance(part, bytes) else repr(part).encode())
            digest.update(b"\0")

    config = connections[alias].settings_dict
    test = {k: v for k, v in (config.get("TEST") or {}).items() if k != "NAME"}
    add(FORMAT, django.VERSION, alias, use_migrations)
    add(config.get("ENGINE"), config.get("NAME"), config.get("HOST"), config.get("PORT"), config.get("USER"))
    add(sorted((str(k), repr(v)) for k, v in (config.get("OPTIONS") or {}).items()))
    add(sorted((str(k), repr(v)) for k, v in test.items()), config.get("TIME_ZONE"))
    routers = [r if isinstance(r, str) else type(r).__qualname__ for r in settings.DATABASE_ROUTERS]
    migration_modules = settings.MIGRATION_MODULES if use_migrations else None
    add(list(settings.INSTALLED_APPS), routers, settings.AUTH_USER_MODEL, settings.USE_TZ)
    add(sorted(migration_modules.items()) if isinstance(migration_modules, dict) else None)
    for app in apps.get_app_configs():
        add(app.label, app.name)
        if not use_migrations:  # the tables come from the models alone
            paths = _sources(app, {app.label: None})
        else:
            paths = _sources(app, migration_modules)
        for path in paths:
            add(str(path.name), path.read_bytes())
    return digest.hexdigest()


class AliasDatabase:
    """One alias's test database in this process: made from its template, restored to it."""

    def __init__(self, connection: Any, fp: str, stats: TemplateStats) -> None:
        self.connection = connection
        self.fingerprint = fp
        self.stats = stats
        self.old_name: str = connection.settings_dict["NAME"]
        self.test_name: str = connection.creation._get_test_db_name()

    def setup(self, *, rebuild: bool) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError

    def teardown(self, *, keep: bool) -> None:
        raise NotImplementedError

    def key_of(self, raw: Any) -> Hashable:
        """How :meth:`open_connections` names ``raw``, a DB-API connection to this database."""
        raise NotImplementedError

    def open_connections(
        self, own: Collection[Hashable], *, before: Collection[Hashable] | None = None
    ) -> dict[Hashable, bool]:
        """The connections open to the test database now, but dbscope's and those in ``own``; each: in a transaction.

        ``before``: the ones open before the test. While some others are listed, a server is
        asked again, briefly: a connection the test just closed may still be on its way out.
        """
        raise NotImplementedError

    def describe(self) -> str:
        """The alias and its test database, for a message."""
        return f"{self.connection.alias} ({self.test_name})"

    def _point_at_test_database(self) -> None:
        settings = _module("django.conf").settings
        self.connection.close()
        settings.DATABASES[self.connection.alias]["NAME"] = self.test_name
        self.connection.settings_dict["NAME"] = self.test_name

    def _timed_restore(self, restore: Any) -> None:
        started = time.perf_counter()
        restore()
        elapsed = time.perf_counter() - started
        self.stats.restores += 1
        self.stats.restore_s += elapsed
        self.stats.restore_times.append(elapsed)


class SQLiteAlias(AliasDatabase):
    """A SQLite alias: the template's image in the cache, copied in with the backup API."""

    def __init__(self, connection: Any, fp: str, stats: TemplateStats, cache: TemplateCache) -> None:
        super().__init__(connection, fp, stats)
        self.cache = cache
        self.template: sqlite3.Connection | None = None

    def setup(self, *, rebuild: bool) -> None:
        creation = self.connection.creation
        with self.cache.locked(self.fingerprint):
            image = None if rebuild else self.cache.load(self.fingerprint)
            if image is None:  # build: Django migrates this process's test database, whose image is kept
                creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
                image = self._raw().serialize()
                self.cache.store(self.fingerprint, image)
                self.stats.built = True
        template = sqlite3.connect(":memory:", check_same_thread=False)
        template.deserialize(image)
        self.template = template
        if not self.stats.built:
            creation._create_test_db(verbosity=0, autoclobber=True, keepdb=False)  # removes an old file
            self._point_at_test_database()
            self._copy_in()
        WATCH.watch(self._key)  # from now on, every connection opened to it is seen (the leak probe)

    @property
    def _key(self) -> str:
        return ConnectionWatch.key(self.test_name)

    def key_of(self, raw: Any) -> Hashable:
        return id(raw)

    def open_connections(
        self, own: Collection[Hashable], *, before: Collection[Hashable] | None = None
    ) -> dict[Hashable, bool]:
        """Every ``sqlite3`` connection of this process to the test database (SQLite lists none).

        A connection that only a reference cycle keeps (a Django connection of a thread that
        has ended: Django never closes an in-memory database's connection) is closed by the
        garbage collector, which runs once when others than ``before`` are found.
        """

        def look() -> dict[Hashable, bool]:
            found = WATCH.open_connections(self._key)
            return {key: conn.in_transaction for key, conn in found.items() if key not in own}

        found = look()
        if before is not None and set(found) - set(before):
            gc.collect()
            found = look()
        return found

    def _raw(self) -> sqlite3.Connection:
        self.connection.ensure_connection()
        raw: sqlite3.Connection = self.connection.connection
        return raw

    def _copy_in(self) -> None:
        assert self.template is not None
        raw = self._raw()
        if raw.in_transaction:
            raw.rollback()
        self.template.backup(raw)

    def restore(self) -> None:
        self._timed_restore(self._copy_in)

    def teardown(self, *, keep: bool) -> None:
        if self.template is not None:
            self.template.close()
            self.template = None
        WATCH.unwatch(self._key)
        self.connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=keep)


class PostgresAlias(AliasDatabase):
    """A PostgreSQL alias: a template database, cloned by ``CREATE DATABASE ... TEMPLATE``.

    A restore does not clone again (a copy of the template's files and a checkpoint: up to
    seconds on a busy disk): it is dbscope's in-place reset (``backends/pg_snapshot.py``),
    from the template's rows read once from the fresh clone, of only the tables written
    since the database last held them. Write tracking is installed in the test database
    once, after the snapshot (statement triggers ``ENABLE ALWAYS`` on every table note each
    table written, by any session, in ``dbscope_track.dirty``, TRUNCATE and cascades
    included; for a superuser an event trigger counts DDL), and each restore reads those
    marks itself once every table is locked. Nothing takes the marks between two restores
    (Django's flow has no look at a scope's boundary, as dbscope's own scopes have), so a
    restore is given no tables written beyond the marks (``written`` empty) while the
    database is known to have held the snapshot when the last restore committed, and
    ``None`` (every table) when it is not: after a restore that failed, until one commits
    again. Where write tracking cannot prove a partial restore enough (a table whose
    trigger a test disabled, inheritance, a crash that emptied the unlogged tracking
    tables), ``pg_snapshot.restore`` restores every table; tracking is then installed again.
    """

    def __init__(self, connection: Any, fp: str, stats: TemplateStats) -> None:
        super().__init__(connection, fp, stats)
        self.template = TEMPLATE_PREFIX + fp[:32]
        self.maintenance: Any = None
        self._restorer: Any = None
        self._snapshot: Any = None
        #: dbscope's write tracking in the test database (pg_snapshot.WriteTracking): no look takes
        #: the marks between restores, so a restore reads every table written since the last one
        self._tracked: Any = None
        self.last_restore: Any = None  # what the last restore did (pg_snapshot.Restored): tests, benchmarks

    def _plain_psycopg(self, name: str) -> Any:
        """A psycopg 3 connection (autocommit, psycopg's own cursors) to ``name``."""
        try:
            psycopg = importlib.import_module("psycopg")
        except ImportError:
            raise ConfigError(
                "dbscope.django restores PostgreSQL databases with psycopg 3: pip install 'dbscope[postgres]'"
            ) from None
        wrapper = self.connection.__class__({**self.connection.settings_dict, "NAME": name}, alias="__dbscope__")
        params = wrapper.get_connection_params()
        for django_only in ("context", "cursor_factory", "prepare_threshold", "server_side_binding"):
            params.pop(django_only, None)
        return psycopg.connect(**params, autocommit=True)

    def _cursor(self) -> Any:
        """A cursor on the server's ``postgres`` database, on one connection kept for the session."""
        if self.maintenance is None:
            self.maintenance = self._plain_psycopg("postgres")
        return self.maintenance.cursor()

    @staticmethod
    def _statement(statement: Any, *names: str) -> Any:
        """``statement`` (a ``psycopg.sql.SQL``) with each ``{}`` a database name quoted by psycopg."""
        return statement.format(*(_sql().Identifier(name) for name in names))

    def setup(self, *, rebuild: bool) -> None:
        lock = int.from_bytes(hashlib.sha256(self.template.encode()).digest()[:8], "big", signed=True)
        with self._cursor() as cursor:
            # held for the session (this connection's): dbscope gc never drops a template a run uses
            cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", [PG_IN_USE_LOCK, in_use_key(self.template)])
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock])
            try:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.template])
                exists = cursor.fetchone() is not None
                if exists and rebuild:
                    cursor.execute(self._statement(_sql().SQL("DROP DATABASE {} WITH (FORCE)"), self.template))
                    exists = False
                if not exists:
                    self._build(cursor)
                    self.stats.built = True
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])
        self.connection.close()
        with self._cursor() as cursor:  # shared: a process rebuilding the template waits for the clones
            cursor.execute("SELECT pg_advisory_lock_shared(%s)", [lock])
            try:
                cursor.execute(self._statement(_sql().SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), self.test_name))
                cursor.execute(self._create_sql(self.test_name))
            finally:
                cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [lock])
        self._point_at_test_database()
        from .backends.pg_snapshot import WriteTracking, take_snapshot

        self._restorer = self._plain_psycopg(self.test_name)
        self._snapshot = take_snapshot(self._restorer)  # the template's rows, read once: every restore's source
        self._tracked = WriteTracking()
        self._tracked.install(self._restorer, superuser=self._snapshot.superuser)
        self._tracked.held(self._snapshot)  # a fresh clone, no session but dbscope's yet: no mark

    def _create_sql(self, name: str) -> Any:
        return self._statement(_sql().SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY"), name, self.template)

    def _build(self, cursor: Any) -> None:
        """Migrate a database under a temporary name, then rename it: a template is complete or absent."""
        test = self.connection.settings_dict["TEST"]
        building = f"{self.template}_b{os.getpid()}"
        saved = test.get("NAME")
        test["NAME"] = building
        try:
            self.connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        finally:
            test["NAME"] = saved
            self.connection.close()
        cursor.execute(self._statement(_sql().SQL("ALTER DATABASE {} RENAME TO {}"), building, self.template))
        comment = (
            f"dbscope.django template of {self.connection.alias} ({self.old_name}) {self.fingerprint} "
            f"made {time.time():.0f}"
        )
        sql = _sql()
        cursor.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(self.template), sql.Literal(comment))
        )

    def restore(self) -> None:
        self._timed_restore(self._in_place)

    def key_of(self, raw: Any) -> Hashable:
        """The server process of ``raw`` (psycopg 3, or psycopg2)."""
        info = getattr(raw, "info", None)
        pid = info.backend_pid if info is not None else raw.get_backend_pid()
        return int(pid)

    def open_connections(
        self, own: Collection[Hashable], *, before: Collection[Hashable] | None = None
    ) -> dict[Hashable, bool]:
        """The client sessions on the test database (``pg_stat_activity``), but dbscope's and ``own``."""
        skip = [int(str(key)) for key in own]
        if self._restorer is not None:
            skip.append(int(self._restorer.info.backend_pid))
        found: dict[Hashable, bool] = {}
        for delay in (0.0, *EXITING_LOOKS_S) if before is not None else (0.0,):
            if delay:
                time.sleep(delay)  # a bounded wait for a session that is exiting, not a synchronisation
            with self._cursor() as cursor:
                cursor.execute(
                    "SELECT pid, state FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend' AND pid <> ALL(%s)",
                    [self.test_name, skip],
                )
                rows = cursor.fetchall()
            found = {int(pid): bool(state) and (state == "active" or "transaction" in state) for pid, state in rows}
            if not set(found) - set(before or ()):
                break
        return found

    def _in_place(self) -> None:
        """dbscope's reset of the tables written (every table when that is not proven enough): emptied and
        the template's rows put back, the sequences that moved set back, in one transaction
        (``backends/pg_snapshot.py``); Django's connection stays open."""
        done = self._tracked.restore(
            self._restorer, self._snapshot, database=self.test_name, lock_timeout_s=RESTORE_LOCK_TIMEOUT_S
        )
        self.last_restore = done
        self.stats.partial_restores += int(done.partial)
        self.stats.tables_restored += len(done.tables)
        if not self._tracked.installed:  # a table lacked its enabled tracking trigger: back on, the next partial
            self._tracked.install(self._restorer, superuser=self._snapshot.superuser)

    def teardown(self, *, keep: bool) -> None:
        try:
            if self._restorer is not None:
                self._restorer.close()
                self._restorer = None
            # Django's own drop would fail on a connection a test leaked (still open until the
            # process ends): dbscope drops its test database WITH (FORCE), which ends them
            self.connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=True)
            if not keep:
                with self._cursor() as cursor:
                    cursor.execute(
                        self._statement(_sql().SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), self.test_name)
                    )
        finally:
            if self.maintenance is not None:
                self.maintenance.close()
                self.maintenance = None


class MySQLAlias(AliasDatabase):
    """A MariaDB/MySQL alias: a template database on the server, copied by dbscope's MariaDB machinery.

    MySQL has no template databases. The template ``test_dbscope_tpl_<fingerprint>`` is
    migrated by Django under the server's named lock of its name, and marked complete last
    by one row in its table ``dbscope_django_template`` (which is never copied): a build
    that died half-way has no mark, and the next process builds again. The process's test
    database is a copy made from the template's blueprint (its tables' DDL, then ``INSERT
    ... SELECT`` of the tables that hold rows, in one script: ``backends/mariadb_schema.py``,
    as dbscope's own MariaDB clones); a restore is that module's restore script (every
    table emptied, the template's rows copied back, ``AUTO_INCREMENT`` set back).
    """

    MARK = "dbscope_django_template"

    def __init__(self, connection: Any, fp: str, stats: TemplateStats) -> None:
        super().__init__(connection, fp, stats)
        self.template = TEMPLATE_PREFIX + fp[:32]
        self.admin: Any = None
        self.using: Any = None
        self.blueprint: Any = None

    def _address(self) -> Any:
        from .backends.mariadb_connect import DEFAULT_PORT, ServerAddress

        config = self.connection.settings_dict
        host = str(config.get("HOST") or "localhost")
        options = config.get("OPTIONS") or {}
        socket = options.get("unix_socket") or (host if host.startswith("/") else None)
        return ServerAddress(
            host=host,
            port=int(config.get("PORT") or DEFAULT_PORT),
            user=str(config.get("USER") or options.get("user") or ""),
            password=str(config.get("PASSWORD") or options.get("password") or ""),
            database=None,
            options=(("unix_socket", str(socket)),) if socket else (),
            masked_url=f"DATABASES[{self.connection.alias!r}] ({host}:{config.get('PORT') or DEFAULT_PORT})",
        )

    def _admin(self) -> Any:
        """dbscope's own connection to the server (several statements at once), kept for the session."""
        if self.admin is None:
            from .backends.mariadb_connect import connect
            from .backends.mariadb_schema import rows

            self.admin = connect(self._address(), None, multi=True)
            # a restore waits at most this long for a transaction a test left open on its tables
            rows(self.admin, "SET SESSION innodb_lock_wait_timeout = %s, lock_wait_timeout = %s", [5, 5])
        return self.admin

    def setup(self, *, rebuild: bool) -> None:
        from .backends.mariadb_connect import connect, quote_name
        from .backends.mariadb_schema import clone_script, rows, run_script

        admin = self._admin()
        got = rows(admin, "SELECT GET_LOCK(%s, %s)", [self.template, BUILD_WAIT_S])[0][0]
        if got != 1:
            raise ConfigError(
                f"DATABASES[{self.connection.alias!r}]: another process has been building the template "
                f"{self.template} for over {BUILD_WAIT_S} s; if none is, run again (the lock went with its session)"
            )
        try:
            if rebuild or not self._complete():
                self._build()
                self.stats.built = True
            # a session on the template for the whole run: dbscope gc never drops a template in use
            self.using = connect(self._address(), self.template)
            self.blueprint = self._blueprint()
            self.connection.close()
            rows(admin, f"DROP DATABASE IF EXISTS {quote_name(self.test_name)}")
            run_script(admin, clone_script(self.blueprint, self.test_name))
        finally:
            rows(admin, "SELECT RELEASE_LOCK(%s)", [self.template])
        self._point_at_test_database()

    def _complete(self) -> bool:
        """Whether the template exists and its build finished (its mark names this fingerprint)."""
        from .backends.mariadb_schema import rows

        found = rows(
            self._admin(),
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            [self.template, self.MARK],
        )
        if not found:
            return False
        mark = rows(self._admin(), f"SELECT fingerprint FROM {self._mark_table()}")
        return bool(mark) and mark[0][0] == self.fingerprint

    def _mark_table(self) -> str:
        from .backends.mariadb_connect import quote_name

        return f"{quote_name(self.template)}.{quote_name(self.MARK)}"

    def _build(self) -> None:
        """Django migrates the template under its own name; the mark goes in last."""
        from .backends.mariadb_connect import quote_name
        from .backends.mariadb_schema import rows

        admin = self._admin()
        rows(admin, f"DROP DATABASE IF EXISTS {quote_name(self.template)}")
        test = self.connection.settings_dict["TEST"]
        saved = test.get("NAME")
        test["NAME"] = self.template
        try:
            self.connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        finally:
            test["NAME"] = saved
            self.connection.close()
            self.connection.settings_dict["NAME"] = self.old_name
        rows(
            admin,
            f"CREATE TABLE {self._mark_table()} (alias VARCHAR(255) NOT NULL, settings_database VARCHAR(255) NOT NULL, "
            "fingerprint CHAR(64) NOT NULL, made DOUBLE NOT NULL)",
        )
        rows(
            admin,
            f"INSERT INTO {self._mark_table()} VALUES (%s, %s, %s, %s)",
            [self.connection.alias, self.old_name, self.fingerprint, time.time()],
        )

    def _blueprint(self) -> Any:
        """The template's blueprint, without dbscope's mark."""
        from .backends.mariadb_schema import read_blueprint

        blueprint = read_blueprint(self._admin(), self.template)
        return replace(
            blueprint,
            tables=tuple(t for t in blueprint.tables if t != self.MARK),
            seeded=tuple(t for t in blueprint.seeded if t != self.MARK),
        )

    def restore(self) -> None:
        self._timed_restore(self._restore)

    def _restore(self) -> None:
        from .backends.mariadb_schema import present, restore_script, run_script

        admin = self._admin()
        run_script(admin, restore_script(self.blueprint, self.test_name, present(admin, self.test_name)))

    def key_of(self, raw: Any) -> Hashable:
        """The server's id of ``raw``'s session (PyMySQL and mysqlclient alike)."""
        return int(raw.thread_id())

    def open_connections(
        self, own: Collection[Hashable], *, before: Collection[Hashable] | None = None
    ) -> dict[Hashable, bool]:
        """The sessions whose database is the test database (``PROCESSLIST``), but dbscope's and ``own``."""
        from .backends.mariadb_schema import rows

        skip = {int(str(key)) for key in own}
        found: dict[Hashable, bool] = {}
        for delay in (0.0, *EXITING_LOOKS_S) if before is not None else (0.0,):
            if delay:
                time.sleep(delay)  # a bounded wait for a session that is exiting, not a synchronisation
            listed = rows(
                self._admin(),
                "SELECT ID, COMMAND = 'Query' FROM information_schema.PROCESSLIST "
                "WHERE DB = %s AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed'",
                [self.test_name],
            )
            found = {int(i): bool(running) for i, running in listed if int(i) not in skip}
            if not set(found) - set(before or ()):
                break
        return found

    def teardown(self, *, keep: bool) -> None:
        from .backends.mariadb_connect import quote_name
        from .backends.mariadb_owner import kill_sessions
        from .backends.mariadb_schema import rows

        try:
            self.connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=True)
            if not keep:
                admin = self._admin()
                kill_sessions(admin, self.test_name)  # connections a test leaked: DROP DATABASE would wait
                rows(admin, f"DROP DATABASE IF EXISTS {quote_name(self.test_name)}")
        finally:
            for connection in (self.admin, self.using):
                if connection is not None:
                    connection.close()
            self.admin = self.using = None


def open_alias(alias: str, *, use_migrations: bool, cache_dir: Path, allow_remote: bool) -> AliasDatabase | None:
    """The dbscope-made test database of ``alias``; None for an engine dbscope does not clone yet.

    Raises ConfigError when the test database's name is the settings' own, or when the
    server is not on this machine and ``allow_remote`` is off.
    """
    connection = _module("django.db").connections[alias]
    config = connection.settings_dict
    engine = config.get("ENGINE", "")
    test_name = connection.creation._get_test_db_name()
    if config.get("NAME") and test_name == config.get("NAME"):
        raise ConfigError(
            f"DATABASES[{alias!r}]: the test database's name {test_name!r} is the database named in the settings; "
            "dbscope never writes to that one (give TEST NAME another name, or leave it unset)"
        )
    if engine in PG_ENGINES or engine in MYSQL_ENGINES:
        host = str(config.get("HOST") or "")
        if not allow_remote and not is_local_host(host):
            raise ConfigError(
                f"DATABASES[{alias!r}] points at {host!r}, which is not this machine; dbscope makes and drops "
                "databases only on a local server unless --dbscope-allow-remote (dbscope_allow_remote = true)"
            )
        fp = fingerprint(alias, use_migrations=use_migrations)
        if engine in MYSQL_ENGINES:
            return MySQLAlias(connection, fp, TemplateStats(alias, "mysql", TEMPLATE_PREFIX + fp[:32]))
        return PostgresAlias(connection, fp, TemplateStats(alias, "postgresql", TEMPLATE_PREFIX + fp[:32]))
    if engine == SQLITE_ENGINE:
        fp = fingerprint(alias, use_migrations=use_migrations)
        cache = TemplateCache(cache_dir)
        return SQLiteAlias(connection, fp, TemplateStats(alias, "sqlite", str(cache.path(fp))), cache)
    return None


# -- dbscope gc -----------------------------------------------------------------------------


def in_use_key(template: str) -> int:
    """The second key of the "in use" advisory lock of ``template`` (a signed 32-bit int)."""
    return int.from_bytes(hashlib.sha256(template.encode()).digest()[:4], "big", signed=True)


@dataclass(frozen=True)
class _Found:
    name: str
    oid: int
    comment: str | None
    in_use: bool


def template_garbage(
    url: Any, *, dry_run: bool = True, templates: bool = False, allow_remote: bool = False
) -> list[Any]:
    """dbscope.django's templates on ``url``'s server, each to drop or keep and why (``dbscope gc``).

    ``url`` is a parsed dbscope URL (:class:`~dbscope.urls.BackendURL`); a URL that is not
    a PostgreSQL or MariaDB/MySQL server gives nothing. Only ``test_dbscope_tpl_<32 hex
    digits>`` databases that dbscope.django marked as its own (PostgreSQL: their comment;
    MariaDB/MySQL: their ``dbscope_django_template`` row), naming the same fingerprint,
    are ever dropped. Of the templates of one alias and settings database, the newest is
    kept (later runs reuse it while nothing changed; ``templates=True`` drops it too) and
    the older ones, of fingerprints whose migrations, models or settings have changed
    since, are dropped. A template a live run uses is always kept (PostgreSQL: the run
    holds the template's "in use" advisory lock; MariaDB/MySQL: it keeps a session on it).
    """
    if getattr(url, "kind", None) != "server":
        return []
    if getattr(url, "family", None) == "mysql":
        return _mysql_garbage(url, dry_run=dry_run, templates=templates, allow_remote=allow_remote)
    if getattr(url, "family", None) != "postgresql":
        return []
    from psycopg import sql

    from .backends.pg_connect import check_local, connect, server_address
    from .backends.servers import GarbageItem

    address = server_address(url)
    check_local(address, allow_remote=allow_remote)
    conn = connect(address, address.maintenance_db, application_name="dbscope gc")
    try:
        locked = {
            int(objid)
            for (objid,) in conn.execute(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid "
                "AND objsubid = 2 AND granted",
                [PG_IN_USE_LOCK],
            )
        }
        rows = conn.execute(
            "SELECT oid, datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE starts_with(datname, %s) ORDER BY datname",
            [TEMPLATE_PREFIX],
        ).fetchall()
        found = [
            _Found(str(name), int(oid), comment, (in_use_key(str(name)) & 0xFFFFFFFF) in locked)
            for oid, name, comment in rows
        ]
        items = _plan(found, templates=templates, item=GarbageItem)
        if dry_run:
            return items

        def claim(name: str) -> str | None:
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", [PG_IN_USE_LOCK, in_use_key(name)]).fetchone()
            return None if got and got[0] else "a run started using it just now"  # since the listing

        return _drop_planned(
            items,
            item=GarbageItem,
            claim=claim,
            # never forced: someone connected to it keeps it
            drop=lambda name: conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))),
            release=lambda name: conn.execute("SELECT pg_advisory_unlock(%s, %s)", [PG_IN_USE_LOCK, in_use_key(name)]),
        )
    finally:
        conn.close()


def _drop_planned(
    items: list[Any],
    *,
    item: Any,
    claim: Callable[[str], str | None],
    drop: Callable[[str], object],
    release: Callable[[str], object],
) -> list[Any]:
    """Drop the templates ``items`` plans to drop, each while ``claim`` holds it; what was done, as ``items``.

    ``claim`` returns None once it holds the template (no run can start using it), or why it
    is kept; a template that cannot be dropped (someone is connected to it) is kept, saying why.
    """
    done: list[Any] = []
    for entry in items:
        if entry.action != "drop":
            done.append(entry)
            continue
        kept = claim(entry.name)
        if kept is not None:
            done.append(item(entry.name, kept, "keep"))
            continue
        try:
            drop(entry.name)
        except Exception as exc:
            done.append(item(entry.name, f"could not drop it: {str(exc).strip()}", "keep"))
        else:
            done.append(entry)
        finally:
            release(entry.name)
    return done


def _plan(found: list[_Found], *, templates: bool, item: Any) -> list[Any]:
    """What gc does with each of ``found`` (see :func:`template_garbage`), as ``item(name, reason, action)``."""
    ours: dict[tuple[str, str], list[tuple[float, int, _Found]]] = {}
    items: dict[str, Any] = {}
    for entry in found:
        match = TEMPLATE_MARK.fullmatch(entry.comment or "")
        if not TEMPLATE_NAME.fullmatch(entry.name) or match is None:
            items[entry.name] = item(
                entry.name,
                "not marked as a complete template of dbscope.django (its own, or one being built); never dropped",
                "keep",
            )
            continue
        if match["fingerprint"][:32] != entry.name.removeprefix(TEMPLATE_PREFIX):
            items[entry.name] = item(entry.name, "its comment names another fingerprint; never dropped", "keep")
            continue
        made = float(match["made"]) if match["made"] else 0.0
        ours.setdefault((match["alias"], match["database"]), []).append((made, entry.oid, entry))
    for (alias, database), group in ours.items():
        group.sort(key=lambda row: (row[0], row[1]), reverse=True)  # newest first (the oid when made is unknown)
        newest = group[0][2].name
        for position, (_made, _oid, entry) in enumerate(group):
            of = f"{alias} ({database})"
            if entry.in_use:
                items[entry.name] = item(entry.name, f"template of {of} in use by a live run", "keep")
            elif position == 0 and not templates:
                items[entry.name] = item(
                    entry.name,
                    f"the newest template of {of}: later runs reuse it while nothing changed (--templates drops it)",
                    "keep",
                )
            elif position == 0:
                items[entry.name] = item(entry.name, f"the newest template of {of}, not in use (--templates)", "drop")
            else:
                items[entry.name] = item(
                    entry.name,
                    f"an older template of {of}, superseded by {newest} (its migrations, models or settings "
                    "changed since); no live run uses it",
                    "drop",
                )
    return [items[entry.name] for entry in found]


def _mysql_garbage(url: Any, *, dry_run: bool, templates: bool, allow_remote: bool) -> list[Any]:
    """:func:`template_garbage` on a MariaDB/MySQL server."""
    from .backends.mariadb_connect import check_local, connect, quote_name, server_address
    from .backends.mariadb_schema import rows
    from .backends.servers import GarbageItem

    address = server_address(url)
    check_local(address, allow_remote=allow_remote)
    conn = connect(address, None)

    def in_use(name: str) -> bool:
        found = rows(
            conn,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
            [name],
        )
        return bool(found[0][0])

    try:
        found: list[_Found] = []
        names = rows(
            conn,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s ORDER BY SCHEMA_NAME",
            [TEMPLATE_PREFIX.replace("_", "\\_") + "%"],
        )
        for (name,) in names:
            marked = rows(
                conn,
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                [name, MySQLAlias.MARK],
            )
            comment = None
            if marked:
                table = f"{quote_name(name)}.{quote_name(MySQLAlias.MARK)}"
                mark = rows(conn, f"SELECT alias, settings_database, fingerprint, made FROM {table}")
                if len(mark) == 1:
                    alias, database, fp, made = mark[0]
                    comment = f"dbscope.django template of {alias} ({database}) {fp} made {float(made):.0f}"
            found.append(_Found(str(name), 0, comment, in_use(str(name))))
        items = _plan(found, templates=templates, item=GarbageItem)
        if dry_run:
            return items

        def claim(name: str) -> str | None:
            # the lock a run holds while it builds or copies the template; a run that starts using
            # it keeps a session on it from before it lets the lock go
            if rows(conn, "SELECT GET_LOCK(%s, 0)", [name])[0][0] != 1:
                return "a run is building or copying it just now"
            if in_use(name):
                release(name)
                return "a run started using it just now"
            return None

        def release(name: str) -> None:
            rows(conn, "SELECT RELEASE_LOCK(%s)", [name])

        return _drop_planned(
            items,
            item=GarbageItem,
            claim=claim,
            drop=lambda name: rows(conn, f"DROP DATABASE IF EXISTS {quote_name(name)}"),
            release=release,
        )
    finally:
        conn.close()
