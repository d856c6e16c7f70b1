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
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .errors import DbscopeError

__all__ = ["INI_NAME", "enabled"]

INI_NAME = "dbscope_django"
ENV_NAME = "DBSCOPE_DJANGO"
#: the key of an xdist worker's ``workeroutput`` that carries its figures to the controller
OUTPUT_KEY = "dbscope_django"
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
        self.figures: list[dict[str, Any]] = []  # this process's, or every worker's under xdist
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_XdistFigures(self), "dbscope-django-xdist")

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
        restoring = _RestoringTeardown(made.by_alias)
        restoring.install()
        try:
            yield
        finally:
            restoring.uninstall()
            self.figures = [made_alias.stats.as_dict() for made_alias in made.unique()]
            workeroutput = getattr(request.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[OUTPUT_KEY] = self.figures
            with blocker.unblock():
                made.teardown(keep=keepdb)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.figures or hasattr(self.config, "workerinput"):
            return
        terminalreporter.write_sep("-", "dbscope: Django test databases")
        for figure in self.figures:
            where = f"[{figure['worker']}] " if "worker" in figure else ""
            state = "built" if figure["built"] else "reused"
            restores = figure["restores"]
            mean = f", mean {1000 * figure['restore_s'] / restores:.1f} ms" if restores else ""
            terminalreporter.write_line(
                f"{where}{figure['alias']} ({figure['engine']}): template {state}, ready in "
                f"{figure['ready_s']:.3f} s; {restores} transactional restores{mean}"
            )


class _XdistFigures:
    """The controller's side: each worker's figures, from ``workeroutput``."""

    def __init__(self, owner: DjangoTemplates) -> None:
        self.owner = owner

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        worker = getattr(node, "workerinput", {}).get("workerid", "?")
        for figure in output.get(OUTPUT_KEY, []):
            self.owner.figures.append({**figure, "worker": worker})


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
    import time

    from .django_templates import open_alias

    connections = importlib.import_module("django.db").connections
    get_unique_databases_and_mirrors = importlib.import_module("django.test.utils").get_unique_databases_and_mirrors

    made = _Made()
    test_databases, mirrored = get_unique_databases_and_mirrors(aliases)
    for _name, sharing in test_databases.values():
        first = sharing[0]
        started = time.perf_counter()
        database = open_alias(first, use_migrations=use_migrations, cache_dir=cache_dir, allow_remote=allow_remote)
        if database is None:  # an engine without templates yet (MySQL, Oracle): Django migrates it
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


class _RestoringTeardown:
    """While installed, a ``TransactionTestCase`` ends by restoring its databases from their templates.

    Django's ``flush`` empties every table (and loses the data migrations' rows); the
    restore puts back the template, data and sequences included. An alias dbscope did
    not make (another engine) is flushed as Django does.
    """

    def __init__(self, by_alias: dict[str, Any]) -> None:
        self.by_alias = by_alias
        self.original: Any = None

    def install(self) -> None:
        TransactionTestCase = importlib.import_module("django.test").TransactionTestCase
        self.original = TransactionTestCase.__dict__["_fixture_teardown"]
        by_alias = self.by_alias
        original = self.original

        def _fixture_teardown(case: Any) -> None:
            names = list(case._databases_names(include_mirrors=False))
            if any(name not in by_alias for name in names):
                original(case)  # flushes every one of them; a restore would add nothing
                return
            done: set[int] = set()
            for name in names:
                made_alias = by_alias[name]
                if id(made_alias) not in done:
                    done.add(id(made_alias))
                    made_alias.restore()

        TransactionTestCase._fixture_teardown = _fixture_teardown

    def uninstall(self) -> None:
        if self.original is not None:
            TransactionTestCase = importlib.import_module("django.test").TransactionTestCase
            TransactionTestCase._fixture_teardown = self.original
            self.original = None
