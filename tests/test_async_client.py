"""AsyncClient and the adb fixture, on real databases; the current scope seen from tasks and threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbscope import AsyncClient, ClientClosedError, DbscopeError, IsolationManager, ScopeError

if TYPE_CHECKING:
    from conftest import MakeProject

USERS = "CREATE TABLE users (id {key} PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);\n"
ADD_USER = "INSERT INTO users (name, email) VALUES (?, ?)"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """Each test runs on SQLite, and on PostgreSQL when it answers (under CI it must)."""
    if request.param == "sqlite":
        return "sqlite://"
    pg_url: str = request.getfixturevalue("pg_url")
    return pg_url


def users_sql(url: str) -> str:
    return USERS.format(key="SERIAL" if url.startswith("postgresql") else "INTEGER")


@pytest.fixture
def migrations(tmp_path: Path, url: str) -> str:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_users.sql").write_text(users_sql(url))
    return str(tmp_path / "migrations")


@pytest.fixture
def manager(url: str, migrations: str) -> Iterator[IsolationManager]:
    with IsolationManager(url, migrations=migrations, env_vars=[]) as manager:
        yield manager


def count_users(adb: AsyncClient) -> Any:
    return asyncio.run(adb.execute("SELECT COUNT(*) FROM users")).scalar()


# -- the Client API as coroutines ---------------------------------------------------------


def test_execute_takes_the_clients_placeholders_and_returns_its_result_sets(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> None:
        inserted = await adb.execute(ADD_USER, ["Ana", "ana@example.com"])
        assert inserted.rows_affected == 1
        await adb.execute("INSERT INTO users (name, email) VALUES (:name, :email)", {"name": "Bo", "email": "b@x"})
        result = await adb.execute("SELECT name, email FROM users ORDER BY name")
        assert result.columns == ("name", "email")
        assert [row["name"] for row in result.rows] == ["Ana", "Bo"]
        assert result.rows[1][1] == "b@x"
        assert await adb.health_check() is True

    with manager.scope("test_execute") as scope:
        adb = AsyncClient(scope.client())
        asyncio.run(work(adb))
        assert adb.stats()["statements"] == 4
        assert adb.stats()["test_name"] == "test_execute"


def test_batch_is_all_or_nothing(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> None:
        results = await adb.batch([(ADD_USER, ["Ana", "a@x"]), ("SELECT COUNT(*) FROM users", ())])
        assert results[1].scalar() == 1
        with pytest.raises(Exception, match="(?i)unique"):
            await adb.batch((ADD_USER, [name, "dup@x"]) for name in ["Bo", "Cy"])  # a generator is fine
        assert (await adb.execute("SELECT COUNT(*) FROM users")).scalar() == 1

    with manager.scope("test_batch") as scope:
        asyncio.run(work(AsyncClient(scope.client())))


def test_a_transaction_commits_rolls_back_and_nests_as_savepoints(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> None:
        async with adb.transaction() as tx:
            await tx.execute(ADD_USER, ["Ana", "a@x"])
            await adb.execute(ADD_USER, ["Bo", "b@x"])  # the task that holds it: inside the transaction
            with pytest.raises(RuntimeError):
                async with adb.transaction() as inner:
                    await inner.execute(ADD_USER, ["Cy", "c@x"])
                    raise RuntimeError("undo the savepoint only")
        with pytest.raises(Exception, match="(?i)unique"):
            async with adb.transaction() as tx:
                await tx.execute(ADD_USER, ["Di", "d@x"])
                await tx.execute(ADD_USER, ["Ed", "a@x"])
        tx = await adb.transaction()  # or begun by await, ended by hand
        await tx.execute(ADD_USER, ["Fay", "f@x"])
        await tx.rollback()
        assert not tx.active
        names = await adb.execute("SELECT name FROM users ORDER BY name")
        assert [row["name"] for row in names.rows] == ["Ana", "Bo"]

    with manager.scope("test_transaction") as scope:
        adb = AsyncClient(scope.client())
        asyncio.run(work(adb))
        assert adb.stats()["in_transaction"] is False


def test_a_transaction_must_begin_before_it_is_used(manager: IsolationManager) -> None:
    with manager.scope("test_not_begun") as scope:
        tx = AsyncClient(scope.client()).transaction()
        with pytest.raises(DbscopeError, match=r"has not begun: use `async with adb.transaction\(\) as tx`"):
            asyncio.run(tx.execute("SELECT 1"))


def test_other_tasks_wait_for_a_tasks_transaction(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> list[str]:
        seen: list[str] = []
        began = asyncio.Event()

        async def holder() -> None:
            async with adb.transaction() as tx:
                began.set()
                await tx.execute(ADD_USER, ["Ana", "a@x"])
                await asyncio.sleep(0.05)  # the other task runs meanwhile, and must wait
                seen.append("holder committed")

        async def other() -> None:
            await began.wait()
            count = (await adb.execute("SELECT COUNT(*) FROM users")).scalar()
            seen.append(f"other saw {count}")

        await asyncio.gather(holder(), other())
        return seen

    with manager.scope("test_tasks_wait") as scope:
        assert asyncio.run(work(AsyncClient(scope.client()))) == ["holder committed", "other saw 1"]


def test_the_event_loop_runs_while_a_statement_runs(manager: IsolationManager) -> None:
    slow = "SELECT pg_sleep(0.2)" if manager.config.url.startswith("postgresql") else "SELECT slow()"

    async def work(adb: AsyncClient) -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await adb.execute(slow)
        task.cancel()
        return ticks

    with manager.scope("test_loop_runs") as scope:
        client = scope.client()
        if not manager.config.url.startswith("postgresql"):
            client._conn.create_function("slow", 0, lambda: time.sleep(0.2))
        assert asyncio.run(work(AsyncClient(client))) >= 5


def test_psycopg_placeholders_get_the_clients_explanation(manager: IsolationManager) -> None:
    with manager.scope("test_placeholders") as scope:
        adb = AsyncClient(scope.client())
        with pytest.raises(DbscopeError, match=r"uses %s, psycopg's placeholder style.*write \? in place of %s"):
            asyncio.run(adb.execute("SELECT name FROM users WHERE name = %s", ["Ana"]))


def test_a_client_closed_by_its_scope_names_the_scope_and_the_test(manager: IsolationManager) -> None:
    with manager.scope("test_outlives") as scope:
        adb = AsyncClient(scope.client())
        asyncio.run(adb.execute("SELECT 1"))
    assert adb.closed
    assert adb.stats()["state"] == "closed"
    with pytest.raises(
        ClientClosedError,
        match=rf"client of scope {scope.id} \(test 'test_outlives'\) is closed: it was closed by dbscope "
        rf"when scope {scope.id} ended",
    ):
        asyncio.run(adb.execute("SELECT 1"))
    with pytest.raises(ClientClosedError):
        adb.transaction()
    for thread in threading.enumerate():  # its worker thread ends with it
        if thread.name.startswith(f"dbscope-async-{scope.id}"):
            thread.join(timeout=5)
            assert not thread.is_alive()


def test_await_close_says_where_it_was_closed_and_a_second_close_is_a_no_op(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> None:
        await adb.execute("SELECT 1")
        assert await adb.close() is True
        assert await adb.close() is True

    with manager.scope("test_closes") as scope:
        adb = AsyncClient(scope.client())
        asyncio.run(work(adb))
        assert adb.closed and adb.client.closed
        with pytest.raises(ClientClosedError, match=r"\(test 'test_closes'\) is closed: it was closed at .*test_async"):
            asyncio.run(adb.batch(["SELECT 1"]))
        assert scope.client().execute("SELECT 1").scalar() == 1  # the scope itself goes on


def test_close_inside_a_transaction_closes_at_once_and_the_transaction_with_it(manager: IsolationManager) -> None:
    async def work(adb: AsyncClient) -> float:
        started = time.monotonic()
        with pytest.raises(ClientClosedError, match="'test_close_in_tx'"):  # as Client's transaction does
            async with adb.transaction() as tx:
                await tx.execute(ADD_USER, ["Ana", "a@x"])
                await adb.close(timeout=5)
        return time.monotonic() - started

    with manager.scope("test_close_in_tx") as scope:
        adb = AsyncClient(scope.client())
        assert asyncio.run(work(adb)) < 2
        assert adb.closed
        assert scope.client().execute("SELECT COUNT(*) FROM users").scalar() == 0


def test_an_async_client_needs_asyncio() -> None:
    with IsolationManager("sqlite://", env_vars=[]) as manager, manager.scope("test_sync") as scope:
        adb = AsyncClient(scope.client())
        coroutine = adb.execute("SELECT 1")
        with pytest.raises(DbscopeError, match=r"needs a running asyncio event loop.*adb.client.execute"):
            coroutine.send(None)
        with pytest.raises(TypeError, match=r"drives a dbscope.Client.*scope.client\(\)"):
            AsyncClient(scope)  # type: ignore[arg-type]


# -- every strategy ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["clone", "reset", "rollback"])
def test_each_strategy_isolates_what_the_async_client_wrote(url: str, migrations: str, strategy: str) -> None:
    with IsolationManager(url, migrations=migrations, strategy=strategy, env_vars=[]) as manager:
        with manager.scope("test_writes") as scope:
            adb = AsyncClient(scope.client())
            asyncio.run(adb.execute(ADD_USER, ["Ana", "a@x"]))
            # under rollback the sync client shares the test's connection; elsewhere the row is committed
            assert scope.client().execute("SELECT COUNT(*) FROM users").scalar() == 1
            if strategy == "rollback":
                assert adb.client.stats()["in_transaction"] is False  # the test's own transaction is not the user's
        with manager.scope("test_next") as scope:
            assert count_users(AsyncClient(scope.client())) == 0


def test_under_rollback_an_async_transaction_is_a_savepoint_in_the_tests_transaction(url: str, migrations: str) -> None:
    async def work(adb: AsyncClient, db: Any) -> None:
        async with adb.transaction() as tx:
            await tx.execute(ADD_USER, ["Ana", "a@x"])
        with pytest.raises(RuntimeError):
            async with adb.transaction() as tx:
                await tx.execute(ADD_USER, ["Bo", "b@x"])
                raise RuntimeError
        # a thread's sync client waits for nothing and sees the committed savepoint
        assert await asyncio.to_thread(lambda: db.execute("SELECT name FROM users").rows[0]["name"]) == "Ana"

    with IsolationManager(url, migrations=migrations, strategy="rollback", env_vars=[]) as manager:
        with manager.scope("test_savepoints") as scope:
            asyncio.run(work(AsyncClient(scope.client()), scope.client()))
        with manager.scope("test_next") as scope:
            assert count_users(AsyncClient(scope.client())) == 0


# -- the current scope, from tasks and threads ------------------------------------------------


def test_tasks_and_threads_started_in_a_scope_find_it(manager: IsolationManager) -> None:
    async def from_tasks() -> list[str]:
        async def scope_id() -> str:
            return manager.get_scoped_client().scope_id

        return list(await asyncio.gather(scope_id(), asyncio.to_thread(lambda: manager.get_scoped_client().scope_id)))

    def in_thread() -> str:
        found: list[str] = []
        worker = threading.Thread(target=lambda: found.append(manager.get_scoped_client().scope_id))
        worker.start()
        worker.join()
        return found[0]

    with manager.scope("test_current") as scope:
        assert asyncio.run(from_tasks()) == [scope.id, scope.id]
        assert in_thread() == scope.id  # a plain thread: the process's current scope
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(lambda: manager.get_scoped_client().scope_id).result() == scope.id
    with pytest.raises(ScopeError, match="there is no current test scope"):
        manager.get_scoped_client()


def test_concurrent_scopes_in_tasks_each_see_their_own(manager: IsolationManager) -> None:
    async def one_test(name: str, started: asyncio.Barrier) -> tuple[str, str]:
        with manager.scope(name) as scope:
            await started.wait()  # both scopes are open now: the process's current one is the later
            found = await asyncio.to_thread(lambda: manager.get_scoped_client().scope_id)
            return scope.id, found

    async def both() -> list[tuple[str, str]]:
        started = asyncio.Barrier(2)
        return list(await asyncio.gather(one_test("test_a", started), one_test("test_b", started)))

    for own, found in asyncio.run(both()):
        assert found == own


def test_a_task_that_outlives_its_scope_is_told_so_not_given_the_next_one(manager: IsolationManager) -> None:
    with manager.scope("test_first") as first:
        context = contextvars.copy_context()  # what a task or thread started here carries
    with manager.scope("test_second"):
        with pytest.raises(ScopeError, match=rf"the scope of this task or thread, {first.id}, has ended"):
            context.run(manager.get_scoped_client)
        assert manager.get_scoped_client().test_name == "test_second"


# -- the adb fixture under pytest-asyncio and anyio ---------------------------------------------

ADB_TESTS = """
import asyncio

import pytest

from dbscope import AsyncClient, ClientClosedError
{header}

KEPT = []


{mark}
async def test_writes_and_reads_its_own_database(adb):
    assert (await adb.execute("SELECT COUNT(*) FROM users")).scalar() == 0
    await adb.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Ana", "ana@example.com"])
    assert (await adb.execute("SELECT name FROM users")).rows[0]["name"] == "Ana"
    KEPT.append(adb)


{mark}
async def test_a_transaction_commits_or_rolls_back(adb):
    assert (await adb.execute("SELECT COUNT(*) FROM users")).scalar() == 0
    async with adb.transaction() as tx:
        await tx.execute("INSERT INTO users (name, email) VALUES ('Bo', 'bo@x')")
    with pytest.raises(Exception):
        async with adb.transaction() as tx:
            await tx.execute("INSERT INTO users (name, email) VALUES ('Cy', 'cy@x')")
            await tx.execute("INSERT INTO users (name, email) VALUES ('Di', 'bo@x')")
    assert [r["name"] for r in (await adb.execute("SELECT name FROM users")).rows] == ["Bo"]
    KEPT.append(adb)


{mark}
async def test_tasks_and_threads_find_the_tests_scope(adb, dbscope, dbscope_scope):
    await adb.execute("INSERT INTO users (name, email) VALUES ('Ed', 'ed@x')")

    async def count():
        return (await AsyncClient(dbscope.get_scoped_client()).execute("SELECT COUNT(*) FROM users")).scalar()

    assert await asyncio.gather(count(), count()) == [1, 1]
    assert await asyncio.to_thread(lambda: dbscope.get_scoped_client().scope_id) == dbscope_scope.id


{mark}
async def test_a_client_kept_from_another_test_is_closed(adb):
    for kept in KEPT:
        with pytest.raises(ClientClosedError, match="is closed: it was closed by dbscope when scope"):
            await kept.execute("SELECT 1")
"""

ASYNCIO_AUTO = ("asyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n", "", "")
ASYNCIO_STRICT = ("asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n", "", "@pytest.mark.asyncio")
# a module-scoped async fixture keeps anyio's runner task (and the context it copied) across tests
ANYIO = (
    "",
    "\n@pytest.fixture(scope='module')\nasync def service():\n    yield 'up'\n",
    "@pytest.mark.anyio\n@pytest.mark.usefixtures('service')",
)
PLUGINS = {"pytest-asyncio auto": ASYNCIO_AUTO, "pytest-asyncio strict": ASYNCIO_STRICT, "anyio": ANYIO}


def adb_project(project: MakeProject, monkeypatch: pytest.MonkeyPatch, plugin: str, url: str) -> pytest.Pytester:
    ini, header, mark = PLUGINS[plugin]
    pytester = project(ini=f"dbscope_url = {url}\n{ini}", migrations={"0001_users.sql": users_sql(url)})
    pytester.makepyfile(test_adb=ADB_TESTS.format(header=header, mark=mark))
    # only the plugin under test: pytest-asyncio and anyio's plugin both claim async tests
    monkeypatch.setenv(
        "PYTEST_ADDOPTS",
        "-p no:hypothesispytest -p no:randomly " + ("-p no:asyncio" if plugin == "anyio" else "-p no:anyio"),
    )
    return pytester


# every plugin in one process; under -n 2, pytest-asyncio's default mode in ./run tests and
# the other two with the slow tests (./run tests --all): xdist adds nothing plugin-specific
PLUGIN_RUNS = [
    pytest.param(
        workers,
        plugin,
        marks=() if workers is None or plugin == "pytest-asyncio auto" else pytest.mark.slow,
        id=f"{'serially' if workers is None else 'n2'}-{plugin}",
    )
    for workers in (None, 2)
    for plugin in PLUGINS
]


@pytest.mark.parametrize(("workers", "plugin"), PLUGIN_RUNS)
def test_the_adb_fixture_under_each_async_plugin(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, url: str, plugin: str, workers: int | None
) -> None:
    pytester = adb_project(project, monkeypatch, plugin, url)
    if workers is None:
        result = pytester.runpytest_subprocess("-p", "no:xdist")
    else:
        result = pytester.runpytest_subprocess("-n", str(workers))
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize("strategy", ["reset", "rollback"])
def test_the_adb_fixture_under_the_strategies_that_keep_one_database(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, url: str, strategy: str
) -> None:
    pytester = adb_project(project, monkeypatch, "pytest-asyncio auto", url)
    pytester.runpytest_subprocess("-p", "no:xdist", f"--dbscope-strategy={strategy}").assert_outcomes(passed=4)


# the frames pytest shows are the client's, not the backend's: PostgreSQL with the slow tests
@pytest.mark.parametrize("url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_a_failing_await_shows_the_tests_line_first(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, url: str, plugin: str
) -> None:
    pytester = adb_project(project, monkeypatch, plugin, url)
    _, header, mark = PLUGINS[plugin]
    pytester.makepyfile(
        test_adb=f"import pytest\n{header}\n\n{mark}\nasync def test_typo(adb):\n"
        '    await adb.execute("SELECT * FROM no_such_table")\n'
    )
    result = pytester.runpytest_subprocess("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert '>       await adb.execute("SELECT * FROM no_such_table")' in output
    assert "no_such_table" in output.split(">       await adb.execute")[1].splitlines()[1]  # the error, next
    for frame in ("async_client.py", "client.py", "concurrent/futures", "asyncio/"):
        assert frame not in output
