"""IsolationManager: scopes, connection registry, metrics, env and module resets, cleanup.

It never imports pytest: the plugin is a thin layer over it, and it works on its own
as a library.

Lifecycle of one scope: purge ``reset_modules`` and run reset hooks -> the strategy
opens the database (a clone from the template, or the worker's database) -> set the
environment -> work -> close every tracked connection, each bounded by the close
timeout -> run reset hooks and purge ``reset_modules`` again -> the strategy counts
connections left open by others (leaks), then drops or restores the database ->
restore the environment -> record metrics. A failure in any step of the end falls back
to emergency cleanup, which still leaves nothing behind. docs/how-it-works.md draws it.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import os
import random
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import Any, Self

from .backends import Backend, Database, open_backend
from .client import Client
from .config import Config, build_config
from .environment import restore_env
from .errors import ConfigError, DbscopeError, MigrationError, ScopeError
from .logs import configure_debug_logging
from .migrations import MigrationSet, load_migrations
from .pool import ClonePool
from .scope import Scope, ScopeOptions, ScopeState
from .strategies import Strategy, strategy_named
from .urls import mask_password, parse_backend_url

__all__ = ["IsolationManager"]

log = logging.getLogger("dbscope.isolation")

_SCOPE_OPTIONS = {"url", "migrations", "seed", "strategy", "close_timeout"}
#: the name of the clone pools' threads
POOL_THREAD = "dbscope-pool"

#: the random part of scope ids: seeded from the system once (and again in a forked child), so a
#: scope costs no getrandom() call; its own generator, so a test's random.seed() never repeats ids
_SCOPE_IDS = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SCOPE_IDS.seed)


class IsolationManager:
    """Creates and destroys isolated scopes, each with a fresh migrated database.

    ``IsolationManager("sqlite://", migrations="migrations/")``: keyword arguments are
    the settings of :class:`~dbscope.Config` (``seed``, ``strategy``, ``env_vars``,
    ``reset_modules``, ``close_timeout``, ...); or pass a ready ``config=``.
    """

    def __init__(self, url: str | None = None, *, config: Config | None = None, **settings: Any) -> None:
        if config is None:
            raw = {("env_var" if k == "env_vars" else k): v for k, v in settings.items()}
            known = {f.name for f in fields(Config)} | {"env_var"}
            unknown = sorted(set(raw) - known)
            if unknown:
                raise ConfigError(f"unknown IsolationManager settings: {', '.join(unknown)}")
            base_dir = raw.pop("base_dir", None)
            if url is not None:
                raw["url"] = url
            config = build_config(ini=raw, ini_source="IsolationManager arguments", base_dir=base_dir)
            if raw.get("env_var") is not None and not raw["env_var"]:
                config = replace(config, env_vars=())  # an explicit empty list: set no variable
        elif url is not None or settings:
            raise ConfigError("pass either config= or settings, not both")
        self.config = config
        self.run_id = secrets.token_hex(4)
        self.worker_id = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.is_test_mode = False
        # The current scope: the one entered in this context (a task or thread running in a copy
        # of the test's context sees the test's scope), else the process's, the scope entered
        # last and not yet ended (what a plain threading.Thread, which starts in an empty
        # context, sees). One variable per manager: two managers never see each other's scopes.
        self._context_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"dbscope_current_scope_{id(self):x}", default=None
        )
        self._context_tokens: dict[str, contextvars.Token[str | None]] = {}
        self._process_scope: str | None = None
        self.active_scopes: dict[str, Scope] = {}
        self.global_connection_registry: set[Any] = set()
        self._counters: Counter[str] = Counter()
        self._cleanup_ms_total = 0.0
        self._backends: dict[str, Backend] = {}
        self._migration_sets: dict[tuple[str, str | None], MigrationSet] = {}
        self._template_errors: dict[tuple[str, str | None, str | None], MigrationError] = {}
        self._templates: dict[tuple[str, str | None, str | None], Any] = {}
        self._pools: dict[tuple[str, str | None, str | None], ClonePool] = {}
        self._strategies: dict[str, Strategy] = {}
        self._saved_env: dict[str, dict[str, str | None]] = {}
        #: CPU time each clone made ahead took in the pool's thread, by id() until a scope takes it
        self._made_ahead_ms: dict[int, float] = {}
        self._default_options: ScopeOptions | None = None  # a scope's options when nothing overrides a setting
        self._serial = 0
        self._lock = threading.RLock()
        self._closed = False
        self.pool_size = 2
        self.scope_listeners: list[Callable[[Scope], None]] = []
        configure_debug_logging()

    # -- the current scope -----------------------------------------------------------

    @property
    def current_test_id(self) -> str | None:
        """The current scope's id: the one entered in this context, else the process's.

        A task, or a function run in a thread through ``contextvars.copy_context().run``
        (``asyncio.to_thread`` and ``anyio.to_thread.run_sync`` do that), sees the scope
        of the context it was started from, and a ScopeError once that scope has ended.
        A ``threading.Thread``, or a ``ThreadPoolExecutor`` job, starts in an empty
        context and sees the process's current scope: the one entered last and not yet
        ended, which under pytest is the running test's.
        """
        return self._context_scope.get() or self._process_scope

    @current_test_id.setter
    def current_test_id(self, scope_id: str | None) -> None:
        self._process_scope = scope_id

    # -- metrics and stats ------------------------------------------------------------

    @property
    def metrics(self) -> dict[str, Any]:
        """The manager's counters as a plain dict (the report's ``metrics``)."""
        destroyed = self._counters["scopes_destroyed"]
        return {
            "scopes_created": self._counters["scopes_created"],
            "scopes_destroyed": destroyed,
            "connections_created": self._counters["connections_created"],
            "connections_closed": self._counters["connections_closed"],
            "connections_leaked": self._counters["connections_leaked"],
            "average_cleanup_ms": round(self._cleanup_ms_total / destroyed, 3) if destroyed else 0.0,
            "emergency_cleanups": self._counters["emergency_cleanups"],
            "modules_cleared": self._counters["modules_cleared"],
            "cleanup_failures": self._counters["cleanup_failures"],
            "pool_hits": sum(p.hits for p in self._pools.values()),
            "pool_misses": sum(p.misses for p in self._pools.values()),
        }

    @property
    def pool_ready(self) -> int:
        """Clones made ahead that wait ready now, over every pool (``pool_size`` each when caught up)."""
        return sum(pool.ready for pool in list(self._pools.values()))

    def wait_for_pools(self, timeout: float = 10.0) -> bool:
        """Wait until every pool holds its clones made ahead (``pool_ready``); False if not within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        return all(
            pool.wait_ready(timeout=max(0.0, deadline - time.monotonic())) for pool in list(self._pools.values())
        )

    def get_stats(self) -> dict[str, Any]:
        """A snapshot: test mode, current scope, active scopes and their connections."""
        scopes = list(self.active_scopes.values())
        return {
            "is_test_mode": self.is_test_mode,
            "current_test_id": self.current_test_id,
            "active_scope_count": len(scopes),
            "active_connection_count": sum(s.connection_count for s in scopes),
            "scopes": [s.stats() for s in scopes],
        }

    # -- the manager's API ------------------------------------------------------------

    def initialize_test_mode(self) -> None:
        """Enter test mode, cleaning up whatever an earlier run of this manager left."""
        if self.active_scopes:
            self.emergency_cleanup()
        self.is_test_mode = True
        log.debug("test isolation manager initialized (run %s, worker %s)", self.run_id, self.worker_id)

    def create_scope(self, test_name: str, *, options_source: str | None = None, **options: Any) -> str:
        """Create a scope with a fresh database cloned from the template; return its id.

        ``options`` override settings for this scope; ``options_source`` says where they
        came from (the plugin: the test's marker), for error messages.
        """
        self._check_open()
        started = time.perf_counter()
        opts = self._scope_options(options, options_source or "scope options")
        scope_id = f"test_{int(time.time() * 1000)}_{_SCOPE_IDS.getrandbits(32):08x}"
        self.clear_module_cache()
        self._run_reset_hooks(scope_id, test_name, at="start")
        strategy = self._strategy(opts.strategy)
        database = strategy.open(self, opts, test_name)
        scope = Scope(scope_id, test_name, opts, database, on_track=self._on_track)
        if self._made_ahead_ms:
            scope.made_ms = self._made_ahead_ms.pop(id(database), 0.0)
        try:
            strategy.attach(scope)
        except BaseException:
            strategy.emergency(scope)
            raise
        scope.setup_ms = scope.made_ms + (time.perf_counter() - started) * 1000
        with self._lock:
            self.active_scopes[scope_id] = scope
            self._counters["scopes_created"] += 1
        log.debug("created scope %s for test %r (%s, %.2f ms)", scope_id, test_name, database.name, scope.setup_ms)
        return scope_id

    def destroy_scope(self, scope_id: str) -> bool:
        """Close everything of a scope and drop its database; True if all went cleanly."""
        scope = self.active_scopes.get(scope_id)
        if scope is None or scope.state is not ScopeState.ACTIVE:
            log.warning("scope %s not found for destruction", scope_id)
            return False
        started = time.perf_counter()
        scope.state = ScopeState.CLOSING
        log.debug("destroying scope %s (test %r)", scope_id, scope.test_name)
        ok = True
        try:
            ok = self._close_connections(scope)
            # the app's own reset (disposing its engine) comes before looking for leaks
            ok = self._run_reset_hooks(scope_id, scope.test_name, at="end") and ok
            self.clear_module_cache()
            self._strategy(scope.options.strategy).end(scope)
            if scope.leaked_connections:
                self._counters["connections_leaked"] += scope.leaked_connections
        except Exception as exc:
            log.error(
                "cleanup of scope %s (test %r) failed: %s; running emergency cleanup", scope_id, scope.test_name, exc
            )
            scope.cleanup_errors.append(f"cleanup failed ({type(exc).__name__}: {exc}); ran emergency cleanup")
            self._emergency(scope)
            self._counters["emergency_cleanups"] += 1
            ok = False
        finally:
            self._finish(scope, started)
        if not ok:
            self._counters["cleanup_failures"] += 1
        return ok

    def get_scoped_client(self, scope_id: str | None = None) -> Client:
        """A new tracked client on a scope's database (default: the current test's scope)."""
        return self._scope(scope_id).client()

    def get_scope(self, scope_id: str | None = None) -> Scope:
        """The active scope with this id (default: the current test's scope)."""
        return self._scope(scope_id)

    def ensure_test_isolation(self, test_name: str, **options: Any) -> str:
        """Begin a test: end the previous one if still open, create and enter a new scope."""
        if self.current_test_id is not None:
            self.complete_test()
        scope_id = self.create_scope(test_name, **options)
        self._enter(scope_id)
        return scope_id

    def complete_test(self) -> bool:
        """End the current test's scope; False if there was none or cleanup failed."""
        scope_id = self.current_test_id
        if scope_id is None:
            return False
        return self.destroy_scope(scope_id)

    def emergency_cleanup(self, scope_id: str | None = None) -> bool:
        """Force-release one scope (or all): close, drop, restore env; never raises."""
        targets = (
            [s for s in [self.active_scopes.get(scope_id)] if s is not None]
            if scope_id is not None
            else list(self.active_scopes.values())
        )
        log.warning(
            "emergency cleanup of %s",
            ", ".join(f"scope {s.id} (test {s.test_name!r})" for s in targets)
            or f"{scope_id or 'all scopes'}: none active",
        )
        ok = True
        for scope in targets:
            ok = self._emergency(scope) and ok
            self._finish(scope, time.perf_counter())
        if scope_id is None:
            for resource in list(self.global_connection_registry):
                ok = _close_quietly(resource, self.config.close_timeout) and ok
            self.global_connection_registry.clear()
        self.clear_module_cache()
        self._counters["emergency_cleanups"] += 1
        return ok

    def clear_module_cache(self) -> int:
        """Purge the modules named in ``reset_modules`` (and their submodules)."""
        names = self.config.reset_modules
        if not names:
            return 0
        doomed = [m for m in list(sys.modules) if any(m == n or m.startswith(n + ".") for n in names)]
        for name in doomed:
            sys.modules.pop(name, None)
        if doomed:
            self._counters["modules_cleared"] += len(doomed)
            log.debug(
                "cleared %d module(s) from sys.modules at the boundary of scope %s: %s",
                len(doomed),
                self.current_test_id or "(none current)",
                ", ".join(doomed),
            )
        return len(doomed)

    @contextlib.contextmanager
    def scope(self, test_name: str, *, options_source: str | None = None, **options: Any) -> Iterator[Scope]:
        """A scope for the ``with`` block: its database, its env vars, then cleanup."""
        scope = self.open_scope(test_name, options_source=options_source, **options)
        try:
            yield scope
        finally:
            self.close_scope(scope)

    def open_scope(self, test_name: str, *, options_source: str | None = None, **options: Any) -> Scope:
        """What ``with scope(...)`` enters, for a caller that ends it with :meth:`close_scope` (the plugin)."""
        scope_id = self.create_scope(test_name, options_source=options_source, **options)
        scope = self.active_scopes[scope_id]
        scope.previous_scope_id = self._process_scope
        try:
            self._enter(scope_id)
        except BaseException:
            self.destroy_scope(scope_id)
            raise
        return scope

    def close_scope(self, scope: Scope) -> None:
        """End a scope :meth:`open_scope` opened; the process's current scope is the one before it again."""
        try:
            self.destroy_scope(scope.id)
        finally:
            self._process_scope = scope.previous_scope_id

    def close(self) -> None:
        """Destroy every active scope and release the backends and templates."""
        if self._closed:
            return
        for scope_id in list(self.active_scopes):
            if not self.destroy_scope(scope_id):
                self.emergency_cleanup(scope_id)
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._made_ahead_ms.clear()
        for strategy in self._strategies.values():
            strategy.close()
        self._strategies.clear()
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:
                log.warning("error closing backend: %s", exc)
        self._backends.clear()
        self.is_test_mode = False
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<IsolationManager {mask_password(self.config.url)} scopes={len(self.active_scopes)}>"

    # -- internals --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DbscopeError("this IsolationManager was closed; create a new one")

    def _scope(self, scope_id: str | None) -> Scope:
        if scope_id is None:
            from_context = self._context_scope.get()
            if from_context is not None and from_context not in self.active_scopes:
                raise ScopeError(
                    f"the scope of this task or thread, {from_context}, has ended: the task or thread was "
                    "started in that scope's test and outlived it; await or join it before its test ends, "
                    "or pass a scope id"
                )
            scope_id = from_context or self._process_scope
            if scope_id is None:
                raise ScopeError(
                    "there is no current test scope; call ensure_test_isolation() first or pass a scope id"
                )
        scope = self.active_scopes.get(scope_id)
        if scope is None:
            raise ScopeError(f"test scope {scope_id} not found: it was never created or was already destroyed")
        return scope

    def _scope_options(self, options: dict[str, Any], source: str = "scope options") -> ScopeOptions:
        unknown = sorted(set(options) - _SCOPE_OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown scope option(s) {', '.join(unknown)}; known: {', '.join(sorted(_SCOPE_OPTIONS))}"
            )
        if not options:
            if self._default_options is None:
                config = self.config
                self._default_options = ScopeOptions(
                    config.url, config.migrations, config.seed, config.strategy, config.close_timeout, config.origins
                )
            return self._default_options
        merged = self.config
        if options:
            parsed = build_config(ini={k: v for k, v in options.items() if v is not None}, ini_source=source)
            values: dict[str, Any] = {k: None if v is None else getattr(parsed, k) for k, v in options.items()}
            merged = replace(self.config, **values, origins={**self.config.origins, **parsed.origins})
        return ScopeOptions(
            merged.url, merged.migrations, merged.seed, merged.strategy, merged.close_timeout, merged.origins
        )

    def _backend(self, url: str) -> Backend:
        with self._lock:
            backend = self._backends.get(url)
            if backend is None:
                parsed = parse_backend_url(url)
                if parsed.path is not None and not os.path.isabs(parsed.path) and self.config.base_dir:
                    parsed = replace(parsed, path=os.path.join(self.config.base_dir, parsed.path))
                backend = open_backend(parsed, run_id=self.run_id, config=self.config)
                self._backends[url] = backend
            return backend

    def _migration_set(self, spec: str | None, setting: str, origin: str) -> MigrationSet:
        key = (setting, spec)
        cached = self._migration_sets.get(key)
        if cached is None:
            cached = load_migrations(spec, setting=setting, base_dir=self.config.base_dir, origin=origin)
            self._migration_sets[key] = cached
        return cached

    def clone(self, opts: ScopeOptions) -> Database:
        """A fresh database for these options, from the pool that keeps clones ready."""
        key = (opts.url, opts.migrations, opts.seed)
        pool = self._pools.get(key)
        if pool is None:
            backend = self._backend(opts.url)
            template = self._template(backend, opts)

            def create() -> Any:
                started = time.thread_time()
                with self._lock:
                    self._serial += 1
                    label = f"{self.worker_id}_{self._serial}"
                database = backend.create(template, label=label)
                if threading.current_thread().name == POOL_THREAD:  # made ahead: the scope that takes it pays
                    self._made_ahead_ms[id(database)] = (time.thread_time() - started) * 1000
                return database

            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    # a server backend sizes the pool from its connection budget
                    size = getattr(backend, "pool_size", self.pool_size)
                    # a backend that clones in this process has the pool clone ahead only when it is free
                    adaptive = bool(getattr(backend, "clones_in_process", False))
                    pool = self._pools[key] = ClonePool(create, size=size, name=POOL_THREAD, adaptive=adaptive)
        database: Database = pool.take()
        return database

    def template_of(self, opts: ScopeOptions) -> tuple[Backend, Any]:
        """The backend and the built template for these options (strategies create from it)."""
        backend = self._backend(opts.url)
        return backend, self._template(backend, opts)

    def _strategy(self, name: str) -> Strategy:
        strategy = self._strategies.get(name)
        if strategy is not None:
            return strategy
        with self._lock:
            strategy = self._strategies.get(name)
            if strategy is None:
                strategy = self._strategies[name] = strategy_named(name)
            return strategy

    @property
    def strategy(self) -> Strategy:
        """The strategy of the session's settings (a marker may choose another per test)."""
        return self._strategy(self.config.strategy)

    def prepare(self) -> dict[str, str]:
        """Build the session's template now, so a broken migration or URL fails before any test module is imported.

        For a strategy with one database per worker (``reset``, ``rollback``, ``worker``) that
        database is created too, and the environment variables pointing at it are returned:
        the caller sets them before conftests and test modules are imported, so an app that
        builds its engine at import time finds it. Empty for ``clone``.
        """
        opts = self._scope_options({})
        database = self.strategy.environment(self, opts)
        if database is None:
            self.template_of(opts)
            return {}
        return {spec.name: database.url(spec.format) for spec in self.config.env_vars}

    def _template(self, backend: Backend, opts: ScopeOptions) -> Any:
        key = (opts.url, opts.migrations, opts.seed)
        ready = self._templates.get(key)
        if ready is not None:
            return ready
        failed = self._template_errors.get(key)
        if failed is not None:
            raise MigrationError(
                f"{failed} (the template build failed earlier in this session)",
                source=failed.source,
                statement=failed.statement,
                statement_index=failed.statement_index,
                line=failed.line,
            )
        migrations = self._migration_set(
            opts.migrations, "dbscope_migrations", opts.origins.get("migrations", "the default")
        )
        seed = self._migration_set(opts.seed, "dbscope_seed", opts.origins.get("seed", "the default"))
        try:
            template = backend.template(
                migrations, seed, rebuild=self.config.rebuild, environment=self._build_environment
            )
        except MigrationError as exc:
            self._template_errors[key] = exc
            raise
        self._templates[key] = template
        return template

    def _build_environment(self, url_of: Callable[[str], str]) -> dict[str, str]:
        """While a template is built: each of the app's variables holds the template's address."""
        return {spec.name: url_of(spec.format) for spec in self.config.env_vars}

    def _enter(self, scope_id: str) -> None:
        started = time.perf_counter()
        scope = self.active_scopes[scope_id]
        saved: dict[str, str | None] = {}
        environ = os.environ
        for spec in self.config.env_vars:
            value = scope.url(spec.format)
            before = saved[spec.name] = environ.get(spec.name)
            if before != value:  # reset and rollback: the worker's database is there already; no putenv()
                environ[spec.name] = value
        self._saved_env[scope_id] = saved
        self._process_scope = scope_id
        self._context_tokens[scope_id] = self._context_scope.set(scope_id)
        scope.setup_ms += (time.perf_counter() - started) * 1000  # the app's variables are dbscope's setup too

    def _restore_env(self, scope_id: str) -> None:
        """Put back each variable as it was before the scope (a test may have changed it); write only what differs."""
        environ = os.environ
        for name, value in self._saved_env.pop(scope_id, {}).items():
            if environ.get(name) != value:
                restore_env({name: value})

    def _on_track(self, resource: Any) -> None:
        self.global_connection_registry.add(resource)
        self._counters["connections_created"] += 1

    def _close_connections(self, scope: Scope, timeout: float | None = None) -> bool:
        """Close every tracked connection; each bounded by the timeout, none stops the rest."""
        ok = True
        timeout = scope.options.close_timeout if timeout is None else timeout
        reason = f"by dbscope when scope {scope.id} ended (end of test {scope.test_name!r})"
        for resource in scope.connections:
            closed = _close_quietly(resource, timeout, reason=reason, problems=scope.cleanup_errors)
            if closed:
                self._counters["connections_closed"] += 1
                scope.connections_closed += 1
            else:
                ok = False
                log.warning("a connection of scope %s (test %r) did not close cleanly", scope.id, scope.test_name)
            self.global_connection_registry.discard(resource)
        scope.connections.clear()
        return ok

    def _emergency(self, scope: Scope) -> bool:
        ok = self._close_connections(scope, min(scope.options.close_timeout, 1.0))
        return self._strategy(scope.options.strategy).emergency(scope) and ok

    def _finish(self, scope: Scope, started: float) -> None:
        with self._lock:
            self.active_scopes.pop(scope.id, None)
            self._restore_env(scope.id)
            if self._process_scope == scope.id:
                self._process_scope = None
            token = self._context_tokens.pop(scope.id, None)
            if token is not None and self._context_scope.get() == scope.id:
                try:
                    self._context_scope.reset(token)
                except ValueError:  # ended from another context (emergency cleanup in another thread)
                    pass
            scope.state = ScopeState.CLOSED
            scope._ended = time.monotonic()
            scope.teardown_ms = (time.perf_counter() - started) * 1000
            self._counters["scopes_destroyed"] += 1
            self._cleanup_ms_total += scope.teardown_ms
        log.debug("destroyed scope %s (test %r) in %.2f ms", scope.id, scope.test_name, scope.teardown_ms)
        for listener in self.scope_listeners:
            try:
                listener(scope)
            except Exception as exc:  # a broken observer must not break cleanup
                log.warning("scope listener %r failed: %s", listener, exc)

    def _run_reset_hooks(self, scope_id: str, test_name: str, *, at: str) -> bool:
        ok = True
        for spec in self.config.reset_hooks:
            module_name, _, attr = spec.partition(":")
            try:
                target: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    target = getattr(target, part)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"dbscope_reset_hooks: cannot load {spec!r}: {exc}; give module:callable of a function "
                    "that resets your application's singletons"
                ) from exc
            try:
                target()
            except Exception as exc:
                if at == "start":
                    raise DbscopeError(f"reset hook {spec} failed before test {test_name!r}: {exc}") from exc
                log.warning("reset hook %s failed after test %r (scope %s): %s", spec, test_name, scope_id, exc)
                ok = False
        return ok


def _close_quietly(
    resource: Any, timeout: float, *, reason: str | None = None, problems: list[str] | None = None
) -> bool:
    """Close anything with close(), waiting at most ``timeout`` seconds; never raises.

    A Client bounds its own close. Anything else is closed in a helper thread so that
    a close that hangs (a dead server, a user's own object) cannot hang the test run.
    What went wrong is logged and, when ``problems`` is given, described there too.
    """
    found: list[str] = [] if problems is None else problems
    if isinstance(resource, Client):
        try:
            if resource.close(timeout, reason=reason):
                return True
            found.extend(f"closing {resource!r}: {p}" for p in resource.close_problems or ["it did not close cleanly"])
        except Exception as exc:
            log.warning("error closing %r: %s", resource, exc)
            found.append(f"error closing {resource!r}: {type(exc).__name__}: {exc}")
        return False
    if getattr(resource, "closed", False) is True:
        return True
    interrupt = getattr(resource, "interrupt", None)  # sqlite3: stop a running statement first
    if callable(interrupt):
        with contextlib.suppress(Exception):
            interrupt()
    outcome: list[BaseException | None] = []

    def close() -> None:
        try:
            resource.close()
            outcome.append(None)
        except BaseException as exc:  # reported below, in the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=close, name="dbscope-close", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("closing %r took longer than %.1f s; abandoned it", resource, timeout)
        found.append(f"closing {resource!r} took longer than {timeout:g} s; abandoned it (its close() still hangs)")
        return False
    if outcome and outcome[0] is not None:
        log.warning("error closing %r: %s", resource, outcome[0])
        found.append(f"error closing {resource!r}: {type(outcome[0]).__name__}: {outcome[0]}")
        return False
    return True
