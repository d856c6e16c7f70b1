"""pytest plugin: settings -> Config, fixtures, the ``dbscope`` marker, a summary.

Thin on purpose: every lifecycle step is the IsolationManager's. Run state lives in
``config.stash``; xdist hooks are registered only when xdist is installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .config import SETTINGS, Config, build_config
from .errors import ConfigError, MigrationError
from .manager import IsolationManager
from .scope import Scope

CONFIG_KEY = pytest.StashKey[Config]()
MANAGER_KEY = pytest.StashKey[IsolationManager]()
SAVED_ENV_KEY = pytest.StashKey[dict[str, "str | None"]]()
LEAKS_KEY = pytest.StashKey[list[tuple[str, int]]]()
WORKER_RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()

MARKER = (
    "dbscope(seed=None, migrations=None, url=None, strategy=None, close_timeout=None): "
    "override dbscope settings for this test"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dbscope", "dbscope: a fresh, migrated, isolated database for every test")
    for setting in SETTINGS:
        if setting.cli:
            if setting.flag:
                group.addoption(setting.option, action="store_true", default=None, dest=setting.ini_name, help=setting.help)
            else:
                group.addoption(setting.option, action="store", default=None, dest=setting.ini_name, metavar="VALUE", help=setting.help)
        if setting.ini:
            parser.addini(setting.ini_name, help=setting.help, type="linelist" if setting.listish else "string")


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
        return build_config(cli=cli, env=os.environ, ini=ini, ini_source=source, base_dir=base_dir)
    except ConfigError as exc:
        raise pytest.UsageError(f"dbscope: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Environment safety before any conftest is imported (the seed's setup file)."""
    settings = _resolve(early_config, early=True)
    saved: dict[str, str | None] = {}
    for name in settings.unset_env:
        saved.setdefault(name, os.environ.get(name))
        os.environ.pop(name, None)
    for name, value in settings.set_env:
        saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value
    early_config.stash[SAVED_ENV_KEY] = saved


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    settings = _resolve(config)
    config.stash[CONFIG_KEY] = settings
    config.stash[LEAKS_KEY] = []
    manager = IsolationManager(config=settings)
    manager.initialize_test_mode()
    config.stash[MANAGER_KEY] = manager
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "dbscope-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is not None:
        manager.close()
    for name, value in config.stash.get(SAVED_ENV_KEY, {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
    try:
        context = dbscope.scope(request.node.nodeid, **options)
        scope = context.__enter__()
    except MigrationError as exc:
        # Fail the session once, with the migration's own message, not once per test.
        request.session.shouldfail = f"dbscope: the template database could not be built ({exc.source})"
        raise
    try:
        yield scope
    finally:
        context.__exit__(None, None, None)
        if scope.leaked_connections:
            request.config.stash[LEAKS_KEY].append((request.node.nodeid, scope.leaked_connections))


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
        raise pytest.UsageError(
            "the db_engine fixture needs SQLAlchemy: pip install 'dbscope[sqlalchemy]'"
        ) from None
    engine = sqlalchemy.create_engine(dbscope_scope.url())
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _dbscope_autouse(request: pytest.FixtureRequest) -> None:
    if request.config.stash[CONFIG_KEY].autouse:
        request.getfixturevalue("dbscope_scope")


# -- report -----------------------------------------------------------------------------


def _summary_lines(metrics: dict[str, Any], leaks: list[tuple[str, int]]) -> list[str]:
    lines = [
        f"scopes created: {metrics['scopes_created']}, destroyed: {metrics['scopes_destroyed']}",
        f"connections created: {metrics['connections_created']}, closed: {metrics['connections_closed']}, "
        f"leaked: {metrics['connections_leaked']}",
        f"average cleanup: {metrics['average_cleanup_ms']:.3f} ms, emergency cleanups: "
        f"{metrics['emergency_cleanups']}, modules cleared: {metrics['modules_cleared']}",
    ]
    lines += [f"connection leak in {nodeid}: {count} connection(s) left open" for nodeid, count in leaks]
    return lines


def _merge_metrics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    destroyed = total.get("scopes_destroyed", 0)
    if destroyed:
        weighted = sum(p["average_cleanup_ms"] * p["scopes_destroyed"] for p in parts)
        total["average_cleanup_ms"] = round(weighted / destroyed, 3)
    return total


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    manager = config.stash.get(MANAGER_KEY, None)
    if workeroutput is not None and manager is not None:
        workeroutput["dbscope"] = {"metrics": manager.metrics, "leaks": config.stash[LEAKS_KEY]}


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is None or hasattr(config, "workerinput"):
        return
    parts = config.stash.get(WORKER_RESULTS_KEY, [])
    if parts:
        metrics = _merge_metrics([p["metrics"] for p in parts])
        leaks = [tuple(leak) for p in parts for leak in p["leaks"]]
    else:
        metrics, leaks = manager.metrics, config.stash[LEAKS_KEY]
    if not metrics.get("scopes_created"):
        return
    terminalreporter.write_sep("=", "dbscope isolation report")
    for line in _summary_lines(metrics, leaks):  # type: ignore[arg-type]
        terminalreporter.write_line(line)


class XdistHooks:
    """Controller side of xdist: collect each worker's figures for one combined report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        config.stash[WORKER_RESULTS_KEY] = []

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        if "dbscope" in output:
            self.config.stash[WORKER_RESULTS_KEY].append(output["dbscope"])
