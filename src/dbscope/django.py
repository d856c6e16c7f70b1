"""dbscope.django: pytest-django's database fixtures, with the databases made by dbscope.

Registered by dbscope's plugin in every run (it imports neither Django nor pytest-django);
it acts only where pytest-django is active:

* ``dbscope_django`` off (the default): pytest-django's fixtures as they are. Both plugins
  define a ``db`` fixture, and which one a test got would depend on the order the two
  plugins happened to load; dbscope registers pytest-django's ``db`` again, after both, so
  a Django suite always gets pytest-django's ``db`` (dbscope's client stays at
  ``dbscope_scope.client()``), and the report header says so.
* ``dbscope_django = true`` (or ``--dbscope-django``, or ``DBSCOPE_DJANGO=1``): the same
  fixtures and markers, but ``django_db_setup`` makes each alias's test database from a
  template by fingerprint (``django_templates.py``) instead of migrating it, and a
  ``transactional_db`` test (any ``TransactionTestCase``) ends with a restore from the
  template instead of Django's ``flush``. ``serialized_rollback`` is accepted and does
  nothing: the restore brings back the data migrations' rows anyway.

  Each Django test that uses a database is fed into dbscope's isolation report (the
  report plugin's ``isolation_ended``, as dbscope's own scopes are): what Django's
  per-test setup and teardown cost (the transaction rolled back, or the restore), and
  the connections to the test databases that were opened during the test and are still
  open after it. Django's own connection of each alias, in the test's thread, is kept
  across tests and is no leak; a connection the test opened itself (``sqlite3.connect``,
  ``psycopg.connect``, a Django connection in a thread that is still alive, a second
  Django connection) is. The templates' figures go into the report's ``django`` section.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .errors import DbscopeError

__all__ = ["INI_NAME", "enabled"]

log = logging.getLogger("dbscope.isolation")

INI_NAME = "dbscope_django"
ENV_NAME = "DBSCOPE_DJANGO"
#: the report's section of the templates' figures (``report["django"]``)
SECTION = "django"
#: while the session's databases are set up: the databases dbscope made in this process, by alias
#: (``django_templates.AliasDatabase``; a PostgreSQL one's ``last_restore`` says what its last restore did)
MADE_KEY = pytest.StashKey[dict[str, Any]]()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

HELP = (
    "with pytest-django: make its test databases from dbscope's templates by fingerprint "
    "(clones per xdist worker, transactional tests restored instead of flushed)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dbscope")
    group.addoption("--dbscope-django", action="store_true", default=None, dest="dbscope_django", help=HELP)
    parser.addini(INI_NAME, help=HELP, type="bool", default=False)


def enabled(config: pytest.Config) -> bool:
    """Whether dbscope makes pytest-django's databases: command line > environment > config file."""
    if config.getoption("dbscope_django", None):
        return True
    env = os.environ.get(ENV_NAME)
    if env is not None:
        value = env.strip().lower()
        if value not in _TRUE | _FALSE:
            raise pytest.UsageError(f"dbscope: {ENV_NAME}={env!r} is not a boolean (1/0, true/false, yes/no)")
        return value in _TRUE
    return bool(config.getini(INI_NAME))


def pytest_configure(config: pytest.Config) -> None:
    on = enabled(config)
    if not config.pluginmanager.hasplugin("django"):
        if on:
            raise pytest.UsageError(
                "dbscope: dbscope_django is on, but pytest-django is not active: pip install pytest-django "
                "(and leave out -p no:django)"
            )
        return
    plugin = DjangoTemplates(config) if on else PytestDjangoDb()
    config.pluginmanager.register(plugin, "dbscope-django-hooks")
    config.pluginmanager.register(plugin.fixtures(), "dbscope-django-fixtures")


class PytestDjangoDb:
    """pytest-django's ``db``, registered after both plugins: a Django suite's ``db`` is never dbscope's."""

    def fixtures(self) -> type:
        """The fixtures, as a plugin of their own: registered only when this class is (never at import).

        A class made here, whose attributes the fixtures are (pytest reads a plugin's fixtures
        from its type), so that importing this module defines none.
        """

        @pytest.fixture
        def db(_django_db_helper: None) -> None:
            """pytest-django's ``db`` fixture: a Django test database (dbscope's client: ``dbscope_scope.client()``)."""

        return type("DbscopeDjangoFixtures", (), {"db": db})

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [
            "dbscope: pytest-django is active, so the db fixture is pytest-django's "
            f"(set {INI_NAME} = true to make its databases from dbscope's templates)"
        ]


class DjangoTemplates(PytestDjangoDb):
    """``dbscope_django`` on: pytest-django's fixtures over template clones and restores."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"dbscope: {INI_NAME} is on: pytest-django's test databases are clones of dbscope's templates"]

    def fixtures(self) -> type:
        owner = self

        @pytest.fixture
        def db(_django_db_helper: None) -> None:
            """pytest-django's ``db`` fixture: a Django test database, cloned from dbscope's template."""

        @pytest.fixture(scope="session")
        def django_db_setup(
            request: pytest.FixtureRequest,
            django_test_environment: None,
            django_db_blocker: Any,
            django_db_use_migrations: bool,
            django_db_keepdb: bool,
            django_db_createdb: bool,
            django_db_modify_db_settings: None,
        ) -> Iterator[None]:
            """pytest-django's ``django_db_setup``: every alias's test database cloned from its template."""
            yield from owner.setup_databases(
                request,
                django_db_blocker,
                use_migrations=django_db_use_migrations,
                keepdb=django_db_keepdb,
                createdb=django_db_createdb,
            )

        return type("DbscopeDjangoFixtures", (), {"db": db, "django_db_setup": django_db_setup})

    def setup_databases(
        self, request: pytest.FixtureRequest, blocker: Any, *, use_migrations: bool, keepdb: bool, createdb: bool
    ) -> Iterator[None]:
        """The body of ``django_db_setup``."""
        from .plugin import CONFIG_KEY

        fixtures = importlib.import_module("pytest_django.fixtures")
        settings = request.config.stash[CONFIG_KEY]
        if not use_migrations:
            fixtures._disable_migrations()
        aliases, _serialized = fixtures._get_databases_for_setup(request.session.items)  # never serialized
        cache_dir = Path(settings.base_dir or request.config.rootpath) / ".dbscope" / "cache"
        with blocker.unblock():
            try:
                made = _setup_databases(
                    aliases,
                    use_migrations=use_migrations,
                    cache_dir=cache_dir,
                    allow_remote=settings.allow_remote,
                    rebuild=settings.rebuild or createdb,
                )
            except DbscopeError as exc:
                request.session.shouldfail = "dbscope: the Django test databases could not be made"
                pytest.fail(f"dbscope: {type(exc).__name__}: {exc}", pytrace=False)
        report = request.config.pluginmanager.get_plugin("dbscope-report")
        isolation = _TestIsolation(made.by_alias, report.isolation_ended if report is not None else None)
        isolation.install()
        request.config.stash[MADE_KEY] = made.by_alias
        try:
            yield
        finally:
            del request.config.stash[MADE_KEY]
            isolation.uninstall()
            if report is not None:
                report.add_section(SECTION, [made_alias.stats.as_dict() for made_alias in made.unique()])
            with blocker.unblock():
                made.teardown(keep=keepdb)


class _Made:
    """The aliases dbscope made in this process, with the aliases that share each one's database."""

    def __init__(self) -> None:
        self.by_alias: dict[str, Any] = {}
        self._mirrors: list[tuple[Any, str]] = []

    def unique(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for made_alias in self.by_alias.values():
            seen.setdefault(id(made_alias), made_alias)
        return list(seen.values())

    def teardown(self, *, keep: bool) -> None:
        for made_alias in self.unique():
            made_alias.teardown(keep=keep)


def _setup_databases(
    aliases: Any, *, use_migrations: bool, cache_dir: Path, allow_remote: bool, rebuild: bool
) -> _Made:
    """Django's ``setup_databases``, with a clone where it migrates (and Django's own way for other engines)."""
    from .django_templates import open_alias

    connections = importlib.import_module("django.db").connections
    get_unique_databases_and_mirrors = importlib.import_module("django.test.utils").get_unique_databases_and_mirrors

    made = _Made()
    test_databases, mirrored = get_unique_databases_and_mirrors(aliases)
    for _name, sharing in test_databases.values():
        first = sharing[0]
        started = time.perf_counter()
        database = open_alias(first, use_migrations=use_migrations, cache_dir=cache_dir, allow_remote=allow_remote)
        if database is None:  # an engine without templates (Oracle, third-party backends): Django migrates it
            connections[first].creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        else:
            database.setup(rebuild=rebuild)
            database.stats.ready_s = time.perf_counter() - started
            for alias in sharing:
                made.by_alias[alias] = database
        for alias in sharing[1:]:
            connections[alias].creation.set_as_test_mirror(connections[first].settings_dict)
    for alias, original in mirrored.items():
        connections[alias].creation.set_as_test_mirror(connections[original].settings_dict)
    return made


@dataclass
class DjangoIsolation:
    """One Django test's use of its databases, as the report reads an ended scope (``reporting.Isolation``)."""

    id: str
    setup_ms: float = 0.0
    teardown_ms: float = 0.0
    leaked_connections: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    cleanup_errors: list[str] = field(default_factory=list)
    isolation_errors: list[str] = field(default_factory=list)
    kept_url: str | None = None
    kept_note: str | None = None


class _TestIsolation:
    """While installed, every Django test that uses databases is timed, probed for leaks and reported,
    and a ``TransactionTestCase`` ends by restoring its databases from their templates.

    Django's ``flush`` empties every table (and loses the data migrations' rows); the
    restore puts back the template, data and sequences included. An alias dbscope did
    not make (another engine) is flushed as Django does.

    Every Django test (pytest-django's ``db``/``transactional_db`` and Django's own
    ``TestCase`` classes alike) goes through ``_pre_setup`` before it and
    ``_post_teardown`` after it: the setup and teardown the report shows are theirs (the
    transaction entered and rolled back, the restore). Before ``_pre_setup`` the
    connections open to each test database are noted; after ``_post_teardown`` those
    opened since and still open are the test's leaks. Django's own connections, those of
    ``connections[alias]`` in the test's thread (kept across tests, closed and opened
    again by Django), are learnt from Django's ``connection_created`` signal and never
    count.
    """

    def __init__(self, by_alias: dict[str, Any], report: Callable[[DjangoIsolation], None] | None) -> None:
        self.by_alias = by_alias
        self.report = report
        self.originals: dict[str, Any] = {}
        self.thread: int | None = None  # the test's thread
        self.own: set[Hashable] = set()  # Django's own connections (of the test's thread), by each alias's key
        self.current: DjangoIsolation | None = None
        self.names: list[str] = []
        self.before: dict[int, set[Hashable]] = {}
        self._receiver: Any = None

    # -- installing ----------------------------------------------------------------

    def install(self) -> None:
        TransactionTestCase = importlib.import_module("django.test").TransactionTestCase
        connection_created = importlib.import_module("django.db.backends.signals").connection_created
        for name in ("_pre_setup", "_post_teardown", "_fixture_teardown"):
            self.originals[name] = TransactionTestCase.__dict__[name]
        isolation = self
        pre_setup, post_teardown, fixture_teardown = (
            _function(self.originals[name]) for name in ("_pre_setup", "_post_teardown", "_fixture_teardown")
        )

        def _pre_setup(case: Any) -> None:
            isolation.begin(case, lambda: pre_setup(case))

        def _post_teardown(case: Any) -> None:
            isolation.end(case, lambda: post_teardown(case))

        def _fixture_teardown(case: Any) -> None:
            isolation.restore(case, lambda: fixture_teardown(case))

        TransactionTestCase._pre_setup = _like(self.originals["_pre_setup"], _pre_setup)
        TransactionTestCase._post_teardown = _like(self.originals["_post_teardown"], _post_teardown)
        TransactionTestCase._fixture_teardown = _like(self.originals["_fixture_teardown"], _fixture_teardown)

        def receiver(sender: Any, connection: Any, **kwargs: Any) -> None:
            isolation.connection_created(connection)

        self._receiver = receiver
        connection_created.connect(receiver, weak=False, dispatch_uid="dbscope-django-isolation")

    def uninstall(self) -> None:
        if not self.originals:
            return
        TransactionTestCase = importlib.import_module("django.test").TransactionTestCase
        for name, original in self.originals.items():
            setattr(TransactionTestCase, name, original)
        self.originals = {}
        connection_created = importlib.import_module("django.db.backends.signals").connection_created
        connection_created.disconnect(dispatch_uid="dbscope-django-isolation")

    # -- one test ------------------------------------------------------------------

    def _databases(self) -> list[Any]:
        """The dbscope-made databases of the test's aliases, each once."""
        seen: dict[int, Any] = {}
        for name in self.names:
            made_alias = self.by_alias.get(name)
            if made_alias is not None:
                seen.setdefault(id(made_alias), made_alias)
        return list(seen.values())

    def _own_now(self) -> None:
        """Django's connections in the test's thread that are open now: its own, never a leak."""
        for wrapper in importlib.import_module("django.db").connections.all(initialized_only=True):
            made_alias = self.by_alias.get(wrapper.alias)
            if made_alias is not None and wrapper.connection is not None:
                self.own.add(made_alias.key_of(wrapper.connection))

    def connection_created(self, wrapper: Any) -> None:
        """Django opened a connection: its own if it is ``connections[alias]`` of the test's thread."""
        if self.thread is None or threading.get_ident() != self.thread:
            return
        made_alias = self.by_alias.get(wrapper.alias)
        if made_alias is None or wrapper.connection is None:
            return
        if importlib.import_module("django.db").connections[wrapper.alias] is wrapper:
            self.own.add(made_alias.key_of(wrapper.connection))

    def begin(self, case: Any, pre_setup: Callable[[], None]) -> None:
        started = time.perf_counter()
        self.names = list(case._databases_names(include_mirrors=False))
        self.current = DjangoIsolation(id=f"django:{','.join(self.names)}")
        self.thread = threading.get_ident()
        self.own = set()
        self._own_now()
        self.before = {id(d): set(d.open_connections(self.own)) for d in self._databases()}
        try:
            pre_setup()
        except BaseException:
            self._finish(started, setup=True)  # Django runs no _post_teardown after a failed _pre_setup
            raise
        if self.current is not None:
            self.current.setup_ms = (time.perf_counter() - started) * 1000

    def end(self, case: Any, post_teardown: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            post_teardown()
        except Exception as exc:
            if self.current is not None:
                self.current.isolation_errors.append(
                    f"the teardown of the test databases of {', '.join(self.names)} failed: {type(exc).__name__}: {exc}"
                )
            raise
        finally:
            self._finish(started, setup=False)

    def _finish(self, started: float, *, setup: bool) -> None:
        """Probe for leaks, then hand the test's isolation to the report."""
        isolation, self.current = self.current, None
        if isolation is None:
            return
        try:
            leaked: list[str] = []
            for database in self._databases():
                before = self.before.get(id(database), set())
                found = database.open_connections(self.own, before=before)
                new = sorted(str(key) for key in found if key not in before)
                if new:
                    leaked.append(f"{database.describe()}: {', '.join(new)}")
                isolation.leaked_connections += len(new)
            if leaked:
                log.warning(
                    "connection leak: %d connection(s) opened during the test and still open after it (%s); "
                    "close the connections the test opened, and shut down the threads it started",
                    isolation.leaked_connections,
                    "; ".join(leaked),
                )
        except Exception as exc:  # the probe must not fail the test: the report says it could not look
            isolation.cleanup_errors.append(f"could not look for leaked connections: {type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        if setup:
            isolation.setup_ms = elapsed
        else:
            isolation.teardown_ms = elapsed
        self.thread = None
        if self.report is not None:
            self.report(isolation)

    def restore(self, case: Any, fixture_teardown: Callable[[], None]) -> None:
        """A ``TransactionTestCase``'s ``_fixture_teardown``: the restore, or Django's flush."""
        names = list(case._databases_names(include_mirrors=False))
        if any(name not in self.by_alias for name in names):
            fixture_teardown()  # flushes every one of them; a restore would add nothing
            return
        done: set[int] = set()
        for name in names:
            made_alias = self.by_alias[name]
            if id(made_alias) not in done:
                done.add(id(made_alias))
                made_alias.restore()


def _function(attribute: Any) -> Callable[[Any], None]:
    """The function of a class attribute: a classmethod's (Django 5.1+'s ``_pre_setup``), or the attribute."""
    function: Callable[[Any], None] = attribute.__func__ if isinstance(attribute, classmethod) else attribute
    return function


def _like(original: Any, replacement: Callable[[Any], None]) -> Any:
    """``replacement`` as the same kind of attribute as ``original``: a classmethod if it was one."""
    return classmethod(replacement) if isinstance(original, classmethod) else replacement
