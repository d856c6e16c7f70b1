"""The throwaway MariaDB server behind mysql+proc://: a real mariadbd, real signals.

Needs MariaDB's server programs (mariadbd, mariadb-install-db) and PyMySQL; without them
these tests skip with the reason (and fail under CI=true, see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mariadbsupport import connect_args, mariadbd_or_skip

from dbscope import BackendUnavailableError, ConfigError
from dbscope.backends.mariadb_proc import PROC, ServerState, ThrowawayServer, start_server
from dbscope.backends.processes import pid_alive
from dbscope.backends.registry import by_scheme
from dbscope.migrations import MigrationSet, load_migrations
from dbscope.urls import parse_backend_url

SHM = Path("/dev/shm")

# A process that owns a server, reports it on stdout, then waits to be signalled.
OWNER_SCRIPT = """
import json, sys
from dbscope.backends.mariadb_proc import ThrowawayServer
server = ThrowawayServer(base_dir=sys.argv[1], watchdog=sys.argv[2] == "watchdog").start()
print(json.dumps({"dir": str(server.directory), "pid": server.pid, "url": server.url}), flush=True)
sys.stdin.read()
"""


@pytest.fixture(autouse=True)
def _programs() -> None:
    mariadbd_or_skip()


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A private base directory, on tmpfs when there is one."""
    path = Path(tempfile.mkdtemp(prefix="dbscope_test_", dir=SHM if SHM.is_dir() else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def query(url: str, sql: str) -> Any:
    import pymysql

    conn = pymysql.connect(**connect_args(url), connect_timeout=5)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
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
        pytest.fail(f"the owner process did not start its server:\n{err}")
    return proc, json.loads(line)


def test_serves_root_on_a_loopback_port_from_a_directory_on_tmpfs_removed_at_stop(base_dir: Path) -> None:
    with ThrowawayServer(base_dir=base_dir) as server:
        assert server.state is ServerState.RUNNING
        assert server.url == f"mysql://root@127.0.0.1:{server.port}/"
        assert query(server.url, "SELECT CURRENT_USER()") == "root@127.0.0.1"
        assert query(server.url, "SELECT @@bind_address") == "127.0.0.1"
        assert query(server.url, "SELECT @@log_bin") == 0
        directory = server.directory
        assert directory is not None and directory.name.startswith("dbscope_mariadb_")
        if SHM.is_dir():
            assert server.on_tmpfs
        print(f"mysql+proc:// start: {server.timings}")
    assert server.state.value == "stopped"
    assert not directory.exists()


def test_a_stopped_server_cannot_start_again_and_says_so(base_dir: Path) -> None:
    server = ThrowawayServer(base_dir=base_dir).start()
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(BackendUnavailableError, match="once it has been stopped; create a new ThrowawayServer"):
        server.start()
    with pytest.raises(BackendUnavailableError, match="is stopped, not running"):
        _ = server.url


def test_a_killed_owner_is_cleaned_up_by_its_watchdog(base_dir: Path) -> None:
    proc, info = start_owner(base_dir, watchdog=True)
    with proc:
        assert query(info["url"], "SELECT 1") == 1
        proc.kill()
        proc.communicate(timeout=30)
    assert eventually(lambda: not Path(info["dir"]).exists() and not pid_alive(info["pid"]))


def test_the_next_start_cleans_the_server_of_a_dead_owner(base_dir: Path) -> None:
    proc, info = start_owner(base_dir, watchdog=False)
    with proc:
        proc.kill()
        proc.communicate(timeout=30)
    stale = Path(info["dir"])
    assert stale.exists() and pid_alive(info["pid"]), "without a watchdog a killed owner leaves its server running"
    live_owner = base_dir / "dbscope_mariadb_1_kept"  # pid 1 is alive: never touched
    live_owner.mkdir()
    with ThrowawayServer(base_dir=base_dir) as running:
        assert not stale.exists()
        assert not pid_alive(info["pid"])
        assert live_owner.exists()
        assert running.directory is not None and running.directory.exists()


def test_a_url_with_a_host_or_an_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="takes no host, user or database"):
        start_server("mysql+proc://root@localhost/")
    with pytest.raises(ConfigError, match="'fsync' is none of bindir, dir and port"):
        start_server("mariadb+proc://?fsync=off")


def test_one_registry_entry_serves_both_schemes() -> None:
    entry = by_scheme("mysql+proc")
    assert entry is not None and entry is by_scheme("mariadb+proc") and entry.kind == "proc"
    assert entry.load() is PROC and PROC.shares_server


def test_a_backend_on_its_own_server_clones_refuses_to_keep_and_stops_the_server_when_closed(
    base_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "0001.sql").write_text("CREATE TABLE items (id int PRIMARY KEY, name text);\n")
    url = parse_backend_url(f"mysql+proc://?dir={base_dir}")
    backend = PROC.open(url, run_id="procrun")
    template = backend.template(load_migrations(tmp_path), MigrationSet())
    database = backend.create(template, label="t1")
    conn = database.connect(autocommit=True)
    conn.execute("INSERT INTO items VALUES (1, 'one')")
    assert conn.execute("SELECT name FROM items").fetchone() == ("one",)
    conn.close()
    with pytest.raises(BackendUnavailableError, match="throwaway server that is removed when the run ends"):
        database.keep()
    database.drop()
    assert [p.name for p in base_dir.iterdir()][0].startswith("dbscope_mariadb_")
    backend.close()
    assert list(base_dir.iterdir()) == []


def test_dbscope_gc_has_nothing_to_do_for_it() -> None:
    listed = PROC.garbage(parse_backend_url("mysql+proc://"), config=None, request=None)  # type: ignore[arg-type]
    assert listed.nothing_because == "a throwaway server (mysql+proc://) is removed with its run"


def test_without_root_no_user_option_is_given() -> None:
    server = ThrowawayServer()
    assert server._user_options() == (["--user=root"] if os.geteuid() == 0 else [])


# -- mysqld -------------------------------------------------------------------------------------------


def test_mariadbs_server_under_its_old_names_mysqld_and_mysql_install_db_starts(base_dir: Path) -> None:
    """Debian's /usr/sbin/mysqld is MariaDB's: a bindir with only the old names works, installing afresh."""
    server_path, install_path = shutil.which("mysqld", path="/usr/sbin:/usr/bin"), shutil.which("mysql_install_db")
    assert server_path and install_path, "MariaDB's server should also answer to mysqld and mysql_install_db here"
    bindir = base_dir / "bin"
    bindir.mkdir()
    (bindir / "mysqld").symlink_to(server_path)
    (bindir / "mysql_install_db").symlink_to(install_path)
    with ThrowawayServer(bindir=bindir, base_dir=base_dir, cache=False) as server:
        assert "MariaDB" in query(server.url, "SELECT VERSION()")
        assert query(server.url, "SELECT @@datadir").startswith(str(base_dir))


def test_mysqls_own_mysqld_is_refused_by_name_and_mariadbs_is_not() -> None:
    from dbscope.backends.mariadb_proc import refuse_mysql

    real = subprocess.run(["/usr/sbin/mysqld", "--version"], capture_output=True, text=True, check=True).stdout
    refuse_mysql(Path("/usr/sbin/mysqld"), real)  # MariaDB's, under the old name: no error
    mysql = "/opt/mysql/bin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)\n"
    with pytest.raises(BackendUnavailableError) as caught:
        refuse_mysql(Path("/opt/mysql/bin/mysqld"), mysql)
    message = str(caught.value)
    assert "/opt/mysql/bin/mysqld is not MariaDB's" in message
    assert "8.0.36" in message and "MySQL Community Server" in message
    assert "bindir" in message and "mysql://user@host:port/" in message


def test_doctor_and_gc_work_on_mysql_proc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dbscope.cli import main as cli_main

    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001.sql").write_text("CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY, v text);")
    before = {p.name for p in SHM.glob(f"dbscope_mariadb_{os.getpid()}_*")} if SHM.is_dir() else set()
    code = cli_main(["doctor", "--url", "mysql+proc://", "--migrations", str(tmp_path / "migrations"), "--clones", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "a throwaway MariaDB server (mysql+proc://) answers" in out and "3 clones" in out
    after = {p.name for p in SHM.glob(f"dbscope_mariadb_{os.getpid()}_*")} if SHM.is_dir() else set()
    assert after == before  # the doctor's server is gone with it
    assert cli_main(["gc", "--url", "mariadb+proc://"]) == 0
    assert "mariadb+proc://: nothing to collect: a throwaway server" in capsys.readouterr().out
