"""pytest plugin: settings -> Config, fixtures, the ``dbscope`` marker, a summary.

Thin on purpose: every lifecycle step is the IsolationManager's. Run state lives in
``config.stash``; the report is its own plugin object (reporting.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

import pytest

from . import django as dbscope_django
from .backends.base import SharedServer
from .config import (
    SETTINGS,
    Config,
    build_config,
    check_arguments,
    check_setting_names,
    config_file_names,
    looks_like_ours,
)
from .environment import change_env, restore_env
from .errors import BackendUnavailableError, ConfigError, DbscopeError, MigrationError
from .logs import configure_debug_logging
from .manager import IsolationManager
from .reporting import ReportPlugin
from .scope import Scope
from .urls import mask_password

CONFIG_KEY = pytest.StashKey[Config]()
MANAGER_KEY = pytest.StashKey[IsolationManager]()
SAVED_ENV_KEY = pytest.StashKey[dict[str, str | None]]()
FAILED_KEY = pytest.StashKey[bool]()
#: the test being run (set before its fixtures are): dbscope_scope's, without asking for ``request``
ITEM_KEY = pytest.StashKey[pytest.Item]()
#: whether pytest_load_initial_conftests took this process for the xdist controller
CONTROLLER_KEY = pytest.StashKey[bool]()
#: the server the xdist controller started for every worker (a backend type's SharedServer)
CLUSTER_KEY = pytest.StashKey[SharedServer]()
#: the key of ``workerinput`` (xdist's controller-to-worker channel) that holds its URL
CLUSTER_INPUT_KEY = "dbscope_cluster_url"
#: The same URL for a worker's first moments: conftests are imported (and the reset and
#: rollback strategies must have set the database's address) before xdist hands the worker
#: its ``workerinput``. It travels in the environment xdist's execnet spec gives the worker
#: process (``pytest_xdist_setupnodes``), never in the controller's own environment.
CLUSTER_SPEC_ENV = "DBSCOPE_XDIST_SERVER_URL"

# pytest captures fd 2 before any hook of ours runs; debug lines must reach the terminal's
# stderr even so (and from xdist workers), so a copy of it is taken when this module is imported.
_DEBUG_STREAM = os.fdopen(os.dup(2), "w", buffering=1) if os.environ.get("DBSCOPE_DEBUG") else None

MARKER = (
    "dbscope(seed=None, migrations=None, url=None, strategy=None, close_timeout=None): "
    "override dbscope settings for this test"
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("dbscope", "dbscope: a fresh, migrated, isolated database for every test")
    if not pluginmanager.has_plugin("dbscope-django"):  # its setting, and pytest-django's fixtures when active
        pluginmanager.register(dbscope_django, "dbscope-django")
    for setting in SETTINGS:
        if setting.cli:
            if setting.flag:
                group.addoption(
                    setting.option, action="store_true", default=None, dest=setting.ini_name, help=setting.help
                )
            else:
                group.addoption(
                    setting.option,
                    action="store",
                    default=None,
                    dest=setting.ini_name,
                    metavar="VALUE",
                    help=setting.help,
                )
        if setting.ini:
            kind: Literal["linelist", "string"] = "linelist" if setting.listish else "string"
            parser.addini(setting.ini_name, help=setting.help, type=kind)


def _resolve(config: pytest.Config, *, early: bool = False) -> Config:
    """The settings; under xdist, with the URL of the server the controller started for every worker."""
    namespace = config.known_args_namespace if early else config.option
    if early:  # before the full parse only the known-args namespace has the command line
        cli = {s.name: vars(namespace).get(s.ini_name) for s in SETTINGS if s.cli}
    else:
        cli = {s.name: config.getoption(s.ini_name) for s in SETTINGS if s.cli}
    ini = {s.name: config.getini(s.ini_name) for s in SETTINGS if s.ini}
    # -o dbscope_x=... (pytest keeps it in override_ini): named as such in errors, not as the file
    overridden = {entry.partition("=")[0].strip() for entry in getattr(namespace, "override_ini", None) or ()}
    origins = {s.name: f"-o {s.ini_name} on the command line" for s in SETTINGS if s.ini_name in overridden}
    inipath = config.inipath
    source = f"config file {inipath.name}" if inipath else "config file"
    base_dir = str(inipath.parent if inipath else config.rootpath)
    try:
        settings = build_config(
            cli=cli, env=os.environ, ini=ini, ini_source=source, base_dir=base_dir, ini_origins=origins
        )
    except ConfigError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None
    if config.stash.get(CLUSTER_KEY, None) is None and _is_xdist_controller(config) and _runs_tests(config):
        _start_shared_cluster(config, settings)  # as early as possible: the controller builds the template on it
    server = config.stash.get(CLUSTER_KEY, None)
    # a worker: xdist's workerinput holds the URL of the controller's server (not yet while
    # pytest_load_initial_conftests runs: xdist sets workerinput once the config exists)
    url = server.url if server is not None else getattr(config, "workerinput", {}).get(CLUSTER_INPUT_KEY)
    if url is None and os.environ.get("PYTEST_XDIST_WORKER"):
        url = os.environ.get(CLUSTER_SPEC_ENV)
    return replace(settings, url=url) if url else settings


def _runs_tests(config: pytest.Config) -> bool:
    """False for ``pytest --help`` and ``--version``, which start no server."""
    namespace = config.known_args_namespace
    return not (getattr(namespace, "help", False) or getattr(namespace, "version", False))


def _check_names(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """A misspelled ``dbscope_*`` setting or ``--dbscope-*`` option, or ``-n`` without pytest-xdist: a usage error.

    pytest itself only warns about an unknown setting (and runs without it), and calls
    ``-n`` an unrecognized argument without saying which plugin it belongs to.
    """
    inipath = config.inipath
    given = [(name, f"in config file {inipath.name}") for name in config_file_names(inipath)] if inipath else []
    overrides = getattr(config.known_args_namespace, "override_ini", None) or ()
    given += [(entry.partition("=")[0].strip(), "given with -o on the command line") for entry in overrides]
    given = [(name, where) for name, where in given if name != dbscope_django.INI_NAME]  # dbscope.django's own
    try:
        check_setting_names(given)
        if any(looks_like_ours(str(arg)) for arg in args):
            _, unknown = parser.parse_known_and_unknown_args(args)
            check_arguments(unknown, xdist_blocked=config.pluginmanager.is_blocked("xdist"))
    except ConfigError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Before any conftest is imported: names checked, environment safety, and the worker's database URL.

    Under the reset and rollback strategies the URL never changes, so it goes into the
    environment now, where module-level engines of conftests and test modules find it.
    """
    if _runs_tests(early_config):  # --help shows the settings whatever the config file says
        _check_names(early_config, parser, args)
    settings = _resolve(early_config, early=True)
    if _DEBUG_STREAM is not None:
        configure_debug_logging(stream=_DEBUG_STREAM)
    saved: dict[str, str | None] = {}
    early_config.stash[SAVED_ENV_KEY] = saved
    change_env(saved, {name: None for name in settings.unset_env})
    change_env(saved, dict(settings.set_env))
    manager = IsolationManager(config=settings)
    early_config.stash[MANAGER_KEY] = manager
    namespace = early_config.known_args_namespace
    if getattr(namespace, "help", False) or getattr(namespace, "version", False):
        return
    if getattr(namespace, "collectonly", False) and not manager.strategy.fixed_url:
        return  # nothing will run and no module reads a database address at import
    if os.environ.get("PYTEST_XDIST_WORKER") and settings.backend_url.backend_type().shares_server:
        # an xdist worker whose controller did not hand it the shared server (the controller
        # starts it; a worker never starts one of its own)
        raise pytest.UsageError(
            f"dbscope: this xdist worker was not given the URL of the server its controller starts for "
            f"{settings.backend_url.masked}; run the controller with this version of dbscope"
        )
    # Build the template now: a broken migration, a refused URL or a server that does not
    # answer stops the run here with dbscope's own message, before any conftest or test
    # module is imported (an app reading DATABASE_URL at import would hide it otherwise).
    controller = _is_xdist_controller(early_config)
    early_config.stash[CONTROLLER_KEY] = controller
    try:
        # the controller imports the conftests too: under reset, rollback and worker it gets a
        # database of its own, so a conftest that reads the address at import works there as well
        environment = manager.prepare()
    except DbscopeError as exc:
        manager.close()
        raise pytest.UsageError(f"dbscope: {type(exc).__name__}: {mask_password(str(exc))}") from None
    if controller and not environment:  # it runs no test: let go of the server (workers reuse the template)
        manager.close()
        early_config.stash[MANAGER_KEY] = IsolationManager(config=settings)
    change_env(saved, environment)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the xdist controller, which runs no test and starts workers (``-n N``, N > 0).

    A worker has ``config.workerinput``; before xdist sets it (while the initial conftests
    load) only PYTEST_XDIST_WORKER, which xdist sets before the worker's config is made.
    """
    if hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    if not config.pluginmanager.hasplugin("xdist"):  # -p no:xdist, or not installed
        return False
    # While the initial conftests load, xdist has not decided yet: decide as it will (its
    # pytest_cmdline_main), never from -n alone: "-n auto --pdb" and "--collect-only -n 2"
    # run every test (or collect every module) in this process.
    namespace = config.known_args_namespace
    workers = getattr(namespace, "numprocesses", None)
    if not workers or getattr(namespace, "collectonly", False):
        return False
    return not (workers in ("auto", "logical") and getattr(namespace, "usepdb", False))


def _distributes(config: pytest.Config) -> bool:
    """After option processing (pytest_configure on): whether xdist really starts workers from here."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return False
    option = config.option
    return bool(getattr(option, "tx", None)) and getattr(option, "dist", "no") != "no" and not option.collectonly


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    early = config.stash.get(CONTROLLER_KEY, None)
    if early is not None and early != _distributes(config):
        # the worker's database was (or was not) put into the environment on a guess that turned
        # out wrong: tests would run against another database, or none. Never silently.
        raise pytest.UsageError(
            "dbscope: pytest-xdist decided differently from what dbscope read in the command line "
            f"(workers: {'yes' if _distributes(config) else 'no'}); please report this with the command line used"
        )
    settings = _resolve(config)
    if config.pluginmanager.hasplugin("xdist") and not config.pluginmanager.hasplugin("dbscope-xdist"):
        config.pluginmanager.register(XdistHooks(config), "dbscope-xdist")
    config.stash[CONFIG_KEY] = settings
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is None or manager.config != settings:
        if manager is not None:
            manager.close()
        manager = IsolationManager(config=settings)
    manager.initialize_test_mode()
    config.stash[MANAGER_KEY] = manager
    config.pluginmanager.register(ReportPlugin(config, manager), "dbscope-report")
    if (settings.autouse or manager.strategy.fixed_url) and not config.pluginmanager.has_plugin("dbscope-autouse"):
        config.pluginmanager.register(AutoScope(), "dbscope-autouse")


def _start_shared_cluster(config: pytest.Config, settings: Config) -> None:
    """xdist controller: start the server every worker shares, if the URL's backend needs one.

    (``postgresql+proc://``: one throwaway cluster.) Workers get its URL through
    ``workerinput`` (:class:`XdistHooks`); it is stopped at ``pytest_unconfigure``.
    """
    url = settings.backend_url
    try:
        kind = url.backend_type()
        server = kind.start_shared_server(url, config=settings) if kind.shares_server else None
    except DbscopeError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None
    if server is not None:
        config.stash[CLUSTER_KEY] = server


class XdistHooks:
    """pytest-xdist's hooks; registered only when xdist is active, whose hook specifications they need."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: list[Any]) -> None:
        """Controller, before the worker processes start: the URL for their first moments (see CLUSTER_SPEC_ENV)."""
        server = self.config.stash.get(CLUSTER_KEY, None)
        if server is not None:
            for spec in specs:
                spec.env[CLUSTER_SPEC_ENV] = server.url

    def pytest_configure_node(self, node: Any) -> None:
        """Controller, before a worker starts: hand it the URL of the shared server (xdist's own channel)."""
        server = self.config.stash.get(CLUSTER_KEY, None)
        if server is not None:
            node.workerinput[CLUSTER_INPUT_KEY] = server.url


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker cleans up here, before xdist reports it finished (after the report's hooks).

    Once a worker has reported, the controller shuts it down and execnet interrupts it
    (SIGINT) after 5 s: a cleanup still waiting for its last drops in pytest_unconfigure
    would be cut short and leave databases behind. The controller waits for this instead.
    """
    manager = session.config.stash.get(MANAGER_KEY, None)
    if manager is not None and hasattr(session.config, "workerinput"):
        manager.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is not None:
        manager.close()  # a no-op if pytest_sessionfinish closed it
    cluster = config.stash.get(CLUSTER_KEY, None)
    if cluster is not None:
        cluster.stop()
    saved: dict[str, str | None] = config.stash.get(SAVED_ENV_KEY, {})
    restore_env(saved)  # back to the values before the session


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dbscope(pytestconfig: pytest.Config) -> IsolationManager:
    """The session's IsolationManager."""
    return pytestconfig.stash[MANAGER_KEY]


@pytest.fixture
def dbscope_scope(pytestconfig: pytest.Config) -> Iterator[Scope]:
    """This test's scope: a fresh database cloned from the migrated template.

    It asks for no ``request`` (pytest builds a fixture definition, inspecting a signature,
    each time a fixture asks for it): the running test is the one ``pytest_runtest_setup``
    noted. The report's setup time of a scope is all of this fixture's work (and ``db``'s
    client), plus what making its clone ahead took in the clone pool's thread.
    """
    yield from _test_scope(pytestconfig)


def _test_scope(pytestconfig: pytest.Config) -> Iterator[Scope]:
    started = time.perf_counter()
    item = pytestconfig.stash[ITEM_KEY]
    manager = pytestconfig.stash[MANAGER_KEY]
    marker = item.get_closest_marker("dbscope")
    options = {k: v for k, v in marker.kwargs.items() if v is not None} if marker else {}
    problem = None
    scope: Scope | None = None
    nodeid = item.nodeid
    try:
        scope = manager.open_scope(nodeid, options_source=f"@pytest.mark.dbscope on {nodeid}", **options)
        _join_app(pytestconfig.stash[CONFIG_KEY], scope)
    except DbscopeError as exc:
        if scope is not None:  # the app's engines could not join: end the scope it had
            manager.close_scope(scope)
        # A setting, migration or server every test needs: fail the session once, with
        # dbscope's own message and no traceback. A marker's bad option fails its test only;
        # a database an earlier test left unusable (IsolationError) fails this test, clearly.
        if isinstance(exc, MigrationError):
            item.session.shouldfail = f"dbscope: the template database could not be built ({exc.source})"
        elif isinstance(exc, (ConfigError, BackendUnavailableError)) and not options:
            item.session.shouldfail = f"dbscope: {type(exc).__name__}, see the first error above"
        problem = f"dbscope: {type(exc).__name__}: {mask_password(str(exc))}"
    if problem is not None or scope is None:  # outside the except block: no "during handling" chain
        pytest.fail(problem or "dbscope: no scope", pytrace=False)
    scope.setup_ms = scope.made_ms + (time.perf_counter() - started) * 1000
    try:
        yield scope
    finally:
        if pytestconfig.stash[CONFIG_KEY].keep_failed and item.stash.get(FAILED_KEY, False):
            scope.kept = True
        manager.close_scope(scope)
    if scope.isolation_errors:  # after the cleanup: the next test starts clean all the same
        pytest.fail("dbscope: " + "\n".join(scope.isolation_errors), pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The running test, for dbscope_scope (a function-scoped fixture is always the running test's)."""
    item.config.stash[ITEM_KEY] = item


@pytest.fixture
def db(dbscope_scope: Scope) -> Any:
    """A :class:`dbscope.Client` on this test's fresh database."""
    started = time.perf_counter()
    client = dbscope_scope.client()
    dbscope_scope.setup_ms += (time.perf_counter() - started) * 1000  # the report's setup: the client too
    return client


@pytest.fixture
def adb(dbscope_scope: Scope) -> Any:
    """A :class:`dbscope.AsyncClient` on this test's database, for async tests (pytest-asyncio, anyio).

    A plain fixture, not an async one: it works under either plugin and every loop scope,
    and the scope's end closes it with the test's other clients.
    """
    from .async_client import AsyncClient

    started = time.perf_counter()
    client = AsyncClient(dbscope_scope.client())
    dbscope_scope.setup_ms += (time.perf_counter() - started) * 1000
    return client


@pytest.fixture
def db_url(dbscope_scope: Scope) -> str:
    """A SQLAlchemy URL of this test's database."""
    return dbscope_scope.url()


def _join_app(settings: Config, scope: Scope) -> None:
    """Under rollback: the app's engines and sessionmakers (dbscope_app_engines/_sessions) join the test."""
    if scope.joined is None or not (settings.app_engines or settings.app_sessions):
        return
    origins = {f"dbscope_{name}": settings.origin(name) for name in ("app_engines", "app_sessions")}
    scope.joined.bind_app(engines=settings.app_engines, sessions=settings.app_sessions, origins=origins)


@pytest.fixture
def db_engine(dbscope_scope: Scope) -> Iterator[Any]:
    """A SQLAlchemy Engine on this test's database, disposed at the end of the test.

    Under the rollback strategy its connections are the test's, inside the test's transaction.
    """
    try:
        import sqlalchemy
    except ImportError:
        raise pytest.UsageError("the db_engine fixture needs SQLAlchemy: pip install 'dbscope[sqlalchemy]'") from None
    if dbscope_scope.joined is not None:
        yield dbscope_scope.joined.engine()  # given back when the scope ends
        return
    engine = sqlalchemy.create_engine(dbscope_scope.url())
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db_async_engine(dbscope_scope: Scope) -> Iterator[Any]:
    """A SQLAlchemy AsyncEngine on this test's database (aiosqlite / asyncpg), disposed after."""
    try:
        from sqlalchemy.ext.asyncio import create_async_engine
    except ImportError as exc:
        raise pytest.UsageError(
            f"the db_async_engine fixture needs SQLAlchemy's asyncio support ({exc}): "
            "pip install 'dbscope[sqlalchemy]' aiosqlite (or asyncpg for PostgreSQL)"
        ) from None
    if dbscope_scope.joined is not None:  # joined to the test's transaction, or JoinUnsupportedError
        yield dbscope_scope.joined.async_engine()
        return
    engine = create_async_engine(dbscope_scope.url("async"))
    try:
        yield engine
    finally:
        _dispose_async(engine)


@pytest.fixture
def db_session(db_engine: Any) -> Iterator[Any]:
    """A SQLAlchemy Session on this test's database, closed at the end of the test.

    Under the rollback strategy it is joined to the test's transaction: its commits are
    savepoints, and the test's rollback undoes them.
    """
    from sqlalchemy.orm import Session

    session = Session(bind=db_engine)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def db_async_session(db_async_engine: Any) -> Iterator[Any]:
    """A SQLAlchemy AsyncSession on this test's database (joined to its transaction under rollback)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    session = AsyncSession(bind=db_async_engine)
    try:
        yield session
    finally:
        _close_async(session)


def _close_async(session: Any) -> None:
    """Close an AsyncSession from synchronous teardown; its loop may be gone (the scope's end closes the rest)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            asyncio.run(session.close())
        except Exception as exc:  # a connection bound to the test's closed loop
            import logging

            logging.getLogger("dbscope.database").debug("closing db_async_session after its loop: %s", exc)


def _dispose_async(engine: Any) -> None:
    """Dispose an AsyncEngine from synchronous teardown, with or without a running loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(engine.dispose())
    else:  # inside a running loop (anyio/pytest-asyncio teardown): close synchronously
        engine.sync_engine.dispose()


class AutoScope:
    """Registered only when every test gets a scope: ``dbscope_autouse``, or a strategy whose
    database is in the environment for every test (reset, rollback), which must restore it
    after every test whether or not the test asked for a dbscope fixture.

    A plugin of its own, not an autouse fixture that decides per test: tests of a suite that
    needs no scope for them pay nothing, and a scope that every test gets is a dependency
    pytest resolves once at collection, not a ``request.getfixturevalue()`` a test.
    """

    @pytest.fixture(autouse=True, name="dbscope_scope")
    def dbscope_scope_for_every_test(self, pytestconfig: pytest.Config) -> Iterator[Scope]:
        """dbscope_scope itself, autouse: registered after this module, this definition is the one
        pytest uses, and a test that takes ``db`` sets up two fixtures, not three."""
        yield from _test_scope(pytestconfig)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED_KEY] = True
    return report
