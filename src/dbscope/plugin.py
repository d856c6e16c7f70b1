"""pytest plugin: settings -> Config, fixtures, the ``dbscope`` marker, a summary.

Thin on purpose: every lifecycle step is the IsolationManager's. Run state lives in
``config.stash``; the report is its own plugin object (reporting.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal

import pytest

from .config import SETTINGS, Config, build_config
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
CLUSTER_KEY = pytest.StashKey[Any]()
CLUSTER_URL_ENV = "DBSCOPE_CLUSTER_URL"
KEPT_KEY = pytest.StashKey[list[tuple[str, str]]]()

# pytest captures fd 2 before any hook of ours runs; debug lines must reach the terminal's
# stderr even so (and from xdist workers), so a copy of it is taken when this module is imported.
_DEBUG_STREAM = os.fdopen(os.dup(2), "w", buffering=1) if os.environ.get("DBSCOPE_DEBUG") else None

MARKER = (
    "dbscope(seed=None, migrations=None, url=None, strategy=None, close_timeout=None): "
    "override dbscope settings for this test"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dbscope", "dbscope: a fresh, migrated, isolated database for every test")
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
    if early:  # before the full parse only the known-args namespace has the command line
        namespace = vars(config.known_args_namespace)
        cli = {s.name: namespace.get(s.ini_name) for s in SETTINGS if s.cli}
    else:
        cli = {s.name: config.getoption(s.ini_name) for s in SETTINGS if s.cli}
    ini = {s.name: config.getini(s.ini_name) for s in SETTINGS if s.ini}
    inipath = config.inipath
    source = f"config file {inipath.name}" if inipath else "config file"
    base_dir = str(inipath.parent if inipath else config.rootpath)
    try:
        settings = build_config(cli=cli, env=os.environ, ini=ini, ini_source=source, base_dir=base_dir)
    except ConfigError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None
    cluster_url = os.environ.get(CLUSTER_URL_ENV)
    if cluster_url and _is_proc_url(settings.url):
        # an xdist worker: the controller started one throwaway cluster for all workers
        settings = replace(settings, url=cluster_url)
    return settings


def _is_proc_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == "postgresql+proc"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest is imported: environment safety, and the worker's database URL.

    Under the reset and rollback strategies the URL never changes, so it goes into the
    environment now, where module-level engines of conftests and test modules find it.
    """
    settings = _resolve(early_config, early=True)
    if _DEBUG_STREAM is not None:
        configure_debug_logging(stream=_DEBUG_STREAM)
    saved: dict[str, str | None] = {}
    early_config.stash[SAVED_ENV_KEY] = saved
    _set_env(saved, {name: None for name in settings.unset_env})
    _set_env(saved, dict(settings.set_env))
    manager = IsolationManager(config=settings)
    early_config.stash[MANAGER_KEY] = manager
    if settings.strategy == "clone" or _is_xdist_controller(early_config):
        return
    try:
        environment = manager.shared_environment()
    except DbscopeError:
        return  # the first test that needs the database reports it, with its context
    _set_env(saved, environment)


def _set_env(saved: dict[str, str | None], changes: Mapping[str, str | None]) -> None:
    """Set (or, for None, delete) variables, remembering each one's first value in ``saved``."""
    for name, value in changes.items():
        saved.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the xdist controller, which runs no test (workers have PYTEST_XDIST_WORKER)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    return bool(getattr(config.known_args_namespace, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    settings = _resolve(config)
    if _is_proc_url(settings.url) and _is_xdist_controller(config):
        settings = _start_shared_cluster(config, settings)
    config.stash[CONFIG_KEY] = settings
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is None or manager.config != settings:
        if manager is not None:
            manager.close()
        manager = IsolationManager(config=settings)
    manager.initialize_test_mode()
    config.stash[MANAGER_KEY] = manager
    config.pluginmanager.register(ReportPlugin(config, manager), "dbscope-report")


def _start_shared_cluster(config: pytest.Config, settings: Config) -> Config:
    """xdist controller: one throwaway cluster serves every worker; they inherit its URL."""
    from .backends.pg_cluster import start_cluster

    try:
        cluster = start_cluster(settings)
    except DbscopeError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None
    config.stash[CLUSTER_KEY] = cluster
    # workers are started after this, with this environment
    _set_env(config.stash[SAVED_ENV_KEY], {CLUSTER_URL_ENV: cluster.url})
    return replace(settings, url=cluster.url)


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
    _set_env({}, saved)  # back to the values before the session


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dbscope(pytestconfig: pytest.Config) -> IsolationManager:
    """The session's IsolationManager."""
    return pytestconfig.stash[MANAGER_KEY]


@pytest.fixture
def dbscope_scope(request: pytest.FixtureRequest, dbscope: IsolationManager) -> Iterator[Scope]:
    """This test's scope: a fresh database cloned from the migrated template."""
    marker = request.node.get_closest_marker("dbscope")
    options = {k: v for k, v in (marker.kwargs if marker else {}).items() if v is not None}
    problem = None
    try:
        context = dbscope.scope(
            request.node.nodeid, options_source=f"@pytest.mark.dbscope on {request.node.nodeid}", **options
        )
        scope = context.__enter__()
    except (ConfigError, MigrationError, BackendUnavailableError) as exc:
        # A setting, migration or server every test needs: fail the session once, with
        # dbscope's own message and no traceback. A marker's bad option fails its test only.
        if isinstance(exc, MigrationError):
            request.session.shouldfail = f"dbscope: the template database could not be built ({exc.source})"
        elif not options:
            request.session.shouldfail = f"dbscope: {type(exc).__name__}, see the first error above"
        problem = f"dbscope: {type(exc).__name__}: {mask_password(str(exc))}"
    if problem is not None:  # outside the except block: no "during handling" chain on the terminal
        pytest.fail(problem, pytrace=False)
    try:
        yield scope
    finally:
        if request.config.stash[CONFIG_KEY].keep_failed and request.node.stash.get(FAILED_KEY, False):
            scope.kept = True
        context.__exit__(None, None, None)
        if scope.kept_url:
            request.config.stash.setdefault(KEPT_KEY, []).append((request.node.nodeid, scope.kept_url))


@pytest.fixture
def db(dbscope_scope: Scope) -> Any:
    """A :class:`dbscope.Client` on this test's fresh database."""
    return dbscope_scope.client()


@pytest.fixture
def db_url(dbscope_scope: Scope) -> str:
    """A SQLAlchemy URL of this test's database."""
    return dbscope_scope.url()


@pytest.fixture
def db_engine(dbscope_scope: Scope) -> Iterator[Any]:
    """A SQLAlchemy Engine on this test's database, disposed at the end of the test."""
    try:
        import sqlalchemy
    except ImportError:
        raise pytest.UsageError("the db_engine fixture needs SQLAlchemy: pip install 'dbscope[sqlalchemy]'") from None
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
    engine = create_async_engine(dbscope_scope.url("async"))
    try:
        yield engine
    finally:
        _dispose_async(engine)


def _dispose_async(engine: Any) -> None:
    """Dispose an AsyncEngine from synchronous teardown, with or without a running loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(engine.dispose())
    else:  # inside a running loop (anyio/pytest-asyncio teardown): close synchronously
        engine.sync_engine.dispose()


@pytest.fixture(autouse=True)
def _dbscope_autouse(request: pytest.FixtureRequest) -> None:
    if request.config.stash[CONFIG_KEY].autouse:
        request.getfixturevalue("dbscope_scope")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED_KEY] = True
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = config.stash.get(KEPT_KEY, [])
    if kept:
        terminalreporter.write_sep("-", "dbscope: databases of failed tests, kept")
        for nodeid, url in kept:
            terminalreporter.write_line(f"{nodeid}: {mask_password(url)}")
