"""The throwaway cluster behind postgresql+proc://: real initdb, real servers, real signals.

Needs the PostgreSQL server binaries (initdb, pg_ctl) and psycopg; without them these tests
skip with the reason (and fail under CI=true, see conftest.py).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbscope import BackendUnavailableError, ConfigError
from dbscope.backends import pg_cluster
from dbscope.backends.pg_cluster import ClusterState, ThrowawayCluster, start_cluster
from dbscope.backends.processes import pid_alive

SHM = Path("/dev/shm")
SHM_WRITABLE = SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK)

# A process that owns a cluster, reports it on stdout, then waits to be signalled.
OWNER_SCRIPT = """
import json, sys
from dbscope.backends.pg_cluster import ThrowawayCluster
cluster = ThrowawayCluster(base_dir=sys.argv[1], watchdog=sys.argv[2] == "watchdog").start()
print(json.dumps({"dir": str(cluster.directory), "pid": cluster.pid, "url": cluster.url}), flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def cluster(pg_bindir: Path) -> Iterator[ThrowawayCluster]:
    """One cluster in the default place, shared by the read-only tests."""
    with ThrowawayCluster() as running:
        yield running


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A private base directory (on tmpfs when there is one) the postgres user can enter."""
    path = Path(tempfile.mkdtemp(prefix="dbscope_test_", dir=SHM if SHM_WRITABLE else None))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def query(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def alive(pid: int) -> bool:
    return pid_alive(pid)


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def start_owner(base_dir: Path, *, watchdog: bool) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(base_dir), "watchdog" if watchdog else "no-watchdog"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"the owner process did not start its cluster:\n{err}")
    return proc, json.loads(line)


# --- a running cluster ---


def test_serves_postgres_on_a_loopback_port(cluster: ThrowawayCluster) -> None:
    assert cluster.state is ClusterState.RUNNING
    assert cluster.url == f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    assert query(cluster.url, "SELECT current_user") == "postgres"
    assert query(cluster.url, "SHOW listen_addresses") == "127.0.0.1"


def test_the_unix_socket_url_reaches_the_same_server(cluster: ThrowawayCluster) -> None:
    assert query(cluster.socket_url, "SHOW port") == str(cluster.port)


def test_durability_is_off(cluster: ThrowawayCluster) -> None:
    for setting in ("fsync", "full_page_writes", "synchronous_commit", "autovacuum"):
        assert query(cluster.url, f"SHOW {setting}") == "off", setting


def test_the_data_directory_is_on_tmpfs_when_dev_shm_is_writable(cluster: ThrowawayCluster) -> None:
    assert cluster.data_dir is not None and cluster.data_dir.is_dir()
    assert cluster.directory is not None and cluster.directory.name.startswith("dbscope_pgcluster_")
    if SHM_WRITABLE:
        assert cluster.directory.parent == SHM
        assert cluster.on_tmpfs
    else:
        assert cluster.directory.parent == Path(tempfile.gettempdir())


def test_create_database_works(cluster: ThrowawayCluster) -> None:
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE dbscope_test_clone TEMPLATE template1")
        try:
            url = cluster.url.rsplit("/", 1)[0] + "/dbscope_test_clone"
            assert query(url, "SELECT current_database()") == "dbscope_test_clone"
        finally:
            conn.execute("DROP DATABASE dbscope_test_clone WITH (FORCE)")


def test_the_server_runs_as_postgres_when_dbscope_runs_as_root(cluster: ThrowawayCluster) -> None:
    assert cluster.pid is not None and cluster.data_dir is not None
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert os.stat(f"/proc/{cluster.pid}").st_uid == expected
    assert cluster.data_dir.stat().st_uid == expected
    assert cluster.os_user == pwd.getpwuid(expected).pw_name


def test_repr_shows_state_url_and_version(cluster: ThrowawayCluster) -> None:
    text = repr(cluster)
    assert text.startswith("<ThrowawayCluster state=running url='postgresql://postgres@127.0.0.1:")
    assert f"version='{cluster.version}'" in text and cluster.version


def test_start_cluster_takes_options_from_the_url(pg_bindir: Path, base_dir: Path) -> None:
    with start_cluster(f"postgresql+proc://?dir={base_dir}&max_connections=50&bindir={pg_bindir}") as running:
        assert running.directory is not None and running.directory.parent == base_dir
        assert query(running.url, "SHOW max_connections") == "50"
        assert query(running.url, "SHOW fsync") == "off"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+proc://db.example.com/app", "takes no host"),
        ("postgresql+proc://?port=http", "port must be a number"),
        ("postgresql+proc://?max-connections=5", "neither bindir, dir, port nor a PostgreSQL setting"),
        ("postgresql://localhost/app", "needs a postgresql\\+proc:// URL"),
    ],
)
def test_start_cluster_rejects_urls_it_cannot_honour(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        start_cluster(url)


# --- stopping ---


def test_leaving_the_with_block_stops_the_server_and_removes_its_directory(pg_bindir: Path, base_dir: Path) -> None:
    import psycopg

    with ThrowawayCluster(base_dir=base_dir) as running:
        url, pid, directory = running.url, running.pid, running.directory
        assert query(url, "SELECT 1") == 1
    assert running.state is ClusterState.STOPPED
    assert directory is not None and not directory.exists()
    assert pid is not None and not alive(pid)
    with pytest.raises(psycopg.OperationalError, match="(?i)refused"):
        query(url, "SELECT 1")
    assert list(base_dir.iterdir()) == []


def test_stop_is_idempotent_and_a_stopped_cluster_cannot_restart(pg_bindir: Path, base_dir: Path) -> None:
    running = ThrowawayCluster(base_dir=base_dir).start()
    running.stop()
    running.stop()
    assert running.state is ClusterState.STOPPED
    assert "stop_ms" in running.timings and "initdb_ms" in running.timings
    with pytest.raises(BackendUnavailableError, match="once it has been stopped; create a new ThrowawayCluster"):
        running.start()
    with pytest.raises(BackendUnavailableError, match="is stopped, not running"):
        running.url  # noqa: B018


def test_a_cluster_that_never_started_stops_quietly() -> None:
    never = ThrowawayCluster()
    never.stop()
    assert never.state is ClusterState.STOPPED
    assert "state=stopped" in repr(never)


# --- failures that must explain themselves and leave nothing behind ---


def test_a_missing_initdb_says_how_to_install_postgresql(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="initdb") as info:
        ThrowawayCluster(bindir=tmp_path).start()
    message = str(info.value)
    assert str(tmp_path) in message
    assert "apt-get install postgresql" in message
    assert "dbscope_url" in message and "postgresql://user@host:port/dbname" in message


def test_root_without_the_server_user_is_explained(pg_bindir: Path, base_dir: Path) -> None:
    if os.geteuid() == 0:
        match = "runs as root.*no such user.*useradd"
    else:
        match = "only root can switch users"
    with pytest.raises(BackendUnavailableError, match=match):
        ThrowawayCluster(base_dir=base_dir, os_user="dbscope_no_such_user").start()
    assert list(base_dir.iterdir()) == []


def test_a_server_that_fails_to_start_quotes_its_log_and_leaves_nothing(pg_bindir: Path, base_dir: Path) -> None:
    failing = ThrowawayCluster(base_dir=base_dir, settings={"no_such_setting": "1"})
    with pytest.raises(
        BackendUnavailableError, match='(?s)did not start.*unrecognized configuration parameter "no_such_setting"'
    ):
        failing.start()
    assert failing.state is ClusterState.STOPPED
    assert list(base_dir.iterdir()) == []


def test_a_port_taken_before_the_server_binds_it_is_retried(
    pg_bindir: Path, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = pg_cluster._free_port
        monkeypatch.setattr(pg_cluster, "_free_port", lambda: next(ports, None) or real_free_port())
        with ThrowawayCluster(base_dir=base_dir) as running:
            assert running.port != taken
            assert query(running.url, "SELECT 1") == 1
            assert running.log_path is not None and "could not bind" in running.log_path.read_text()


# --- owners that die ---


def test_ctrl_c_in_the_owner_stops_the_server_and_removes_the_directory(pg_bindir: Path, base_dir: Path) -> None:
    # No watchdog: the owner's own KeyboardInterrupt/atexit path must do it.
    proc, info = start_owner(base_dir, watchdog=False)
    with proc:
        assert query(info["url"], "SELECT 1") == 1
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert not Path(info["dir"]).exists()
    assert not alive(info["pid"])


def test_a_killed_owner_is_cleaned_up_by_its_watchdog(pg_bindir: Path, base_dir: Path) -> None:
    proc, info = start_owner(base_dir, watchdog=True)
    with proc:
        proc.kill()
        proc.communicate(timeout=30)
    assert eventually(lambda: not Path(info["dir"]).exists() and not alive(info["pid"]))


def test_the_next_start_cleans_the_cluster_of_a_dead_owner(pg_bindir: Path, base_dir: Path) -> None:
    proc, info = start_owner(base_dir, watchdog=False)
    with proc:
        proc.kill()
        proc.communicate(timeout=30)
    stale = Path(info["dir"])
    assert stale.exists() and alive(info["pid"]), "without a watchdog a killed owner leaves its server running"
    live_owner = base_dir / "dbscope_pgcluster_1_kept"  # pid 1 is alive: never touched
    live_owner.mkdir()
    with ThrowawayCluster(base_dir=base_dir) as running:
        assert not stale.exists()
        assert not alive(info["pid"])
        assert live_owner.exists()
        assert running.directory is not None and running.directory.exists()


# --- as a backend ---


def test_a_backend_on_its_own_cluster_clones_and_stops_the_cluster_when_closed(
    pg_bindir: Path, base_dir: Path, tmp_path: Path
) -> None:
    from dbscope.backends.pg_cluster import open_cluster_backend
    from dbscope.migrations import load_migrations

    (tmp_path / "0001_users.sql").write_text("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);")
    backend = open_cluster_backend(f"postgresql+proc://?dir={base_dir}", run_id="pgcluster")
    try:
        template = backend.template(load_migrations(str(tmp_path)), load_migrations(None))
        database = backend.create(template, label="t1")
        conn = database.connect(autocommit=True)
        try:
            conn.execute("INSERT INTO users (name) VALUES ('Ana')")
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
        finally:
            conn.close()
        database.release()
        database.drop()
        assert [p for p in base_dir.iterdir()], "the cluster lives while the backend is open"
    finally:
        backend.close()
    assert list(base_dir.iterdir()) == []
