"""The dbscope command: report, baseline, gc, doctor; exit codes and error messages."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dbscope
from dbscope.backends.hostfs import MEMORY_FILESYSTEMS, filesystem_type
from dbscope.backends.sqlite import write_owner_file
from dbscope.backends.sqlite_tools import sqlite_garbage
from dbscope.cli import CONFIG_FILES, load_settings, main
from dbscope.config import EnvVarSpec
from dbscope.report import Record, build_report, write_json

USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_report(tmp_path: Path, *, slow_ms: float = 3.0, name: str = "run.json", leaks: int = 1) -> Path:
    tests: list[dict[str, Any]] = []
    for i, (nodeid, duration, leaked) in enumerate(
        [("t.py::test_a", 1.0, 0), ("t.py::test_b", slow_ms, 0), ("t.py::test_leaky", 2.0, leaks)]
    ):
        rec = Record(
            nodeid,
            started_at=float(i),
            duration_ms=duration,
            setup_ms=0.3,
            teardown_ms=0.1,
            scopes=1,
            connections_leaked=leaked,
        )
        rec.check(slow_test_s=5, memory_growth_mb=50)
        tests.append(rec.to_dict())
    metrics = {
        "scopes_created": 3,
        "scopes_destroyed": 3,
        "connections_created": 3,
        "connections_closed": 3,
        "connections_leaked": leaks,
        "average_cleanup_ms": 0.1,
        "emergency_cleanups": 0,
        "modules_cleared": 0,
    }
    return write_json(tmp_path / name, build_report(tests, metrics, memory_source="rss"))


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with migrations/ and a pytest.ini, as the current directory; no DBSCOPE_* leaking in."""
    for name in list(os.environ):
        if name.startswith("DBSCOPE_"):
            monkeypatch.delenv(name)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_users.sql").write_text(USERS_SQL)
    (tmp_path / "pytest.ini").write_text("[pytest]\ndbscope_migrations = migrations\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- report -----------------------------------------------------------------------------


def test_report_prints_a_saved_report_and_renders_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_report(tmp_path)
    code, out, err = run(capsys, "report", str(path), "--html", str(tmp_path / "html" / "r.html"))
    assert code == 1 and err == ""  # the run leaked a connection
    lines = out.splitlines()
    assert lines[0].startswith(f"dbscope isolation report: {path} (")
    assert "scopes created: 3, destroyed: 3" in lines
    assert "connection leak in t.py::test_leaky: 1 connection(s) left open" in lines
    assert lines[-2] == f"HTML report written to {tmp_path / 'html' / 'r.html'}"
    assert lines[-1] == "problems found: 1 test(s) that leaked a connection or scope"
    assert "<svg" in (tmp_path / "html" / "r.html").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "dbscope report: error: report '{path}' does not exist"),
        (
            "[]",
            (
                "dbscope report: error: '{path}' is not a dbscope report (no summary, metrics and tests); "
                "write one with pytest --dbscope-report=PATH"
            ),
        ),
        (
            "{oops",
            (
                "dbscope report: error: report '{path}' is not JSON (Expecting property name enclosed in "
                "double quotes: line 1 column 2 (char 1))"
            ),
        ),
    ],
)
def test_report_on_a_bad_file_is_a_usage_error_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "report", str(path))
    assert code == 2 and out == ""
    assert err == message.format(path=path) + "\n"


def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    code, _, err = run(capsys, "report", str(make_report(tmp_path)), "--html", str(tmp_path / "blocker" / "r.html"))
    assert code == 1
    assert err == f"dbscope report: cannot write the HTML report to {tmp_path / 'blocker' / 'r.html'}: File exists\n"


def make_failed_report(tmp_path: Path, *, failed: int, leaks: int) -> Path:
    tests = []
    for i in range(3):
        rec = Record(f"t.py::test_{i}", started_at=float(i), duration_ms=1.0, connections_leaked=leaks if i == 0 else 0)
        rec.outcome = "failed" if i < failed else "passed"
        rec.check(slow_test_s=5, memory_growth_mb=50)
        tests.append(rec.to_dict())
    return write_json(tmp_path / "run.json", build_report(tests, {}, memory_source="rss"))


@pytest.mark.parametrize(
    ("failed", "leaks", "code", "last"),
    [
        (0, 0, 0, "no failed tests and no leaks"),
        (2, 0, 1, "problems found: 2 failed test(s)"),
        (0, 1, 1, "problems found: 1 test(s) that leaked a connection or scope"),
        (1, 3, 1, "problems found: 1 failed test(s), 1 test(s) that leaked a connection or scope"),
    ],
)
def test_report_exits_1_for_a_run_with_failed_tests_or_leaks_and_says_so_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], failed: int, leaks: int, code: int, last: str
) -> None:
    path = make_failed_report(tmp_path, failed=failed, leaks=leaks)
    status, out, err = run(capsys, "report", str(path))
    assert (status, err) == (code, "")
    assert out.splitlines()[-1] == last


# -- baseline ---------------------------------------------------------------------------


def test_baseline_save_then_check_the_same_run_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_path = make_report(tmp_path)
    code, out, _ = run(capsys, "baseline", "save", str(run_path), str(tmp_path / "base.json"))
    assert code == 0 and out == f"baseline written to {tmp_path / 'base.json'}\n"
    assert json.loads((tmp_path / "base.json").read_text())["max_duration_ms"] == 3.0
    code, out, _ = run(capsys, "baseline", "check", str(run_path), str(tmp_path / "base.json"))
    assert code == 0
    assert out.splitlines()[-1] == "no performance regression"


def test_baseline_check_exits_1_on_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_report(tmp_path, slow_ms=100.0, name="base-run.json")
    slower = make_report(tmp_path, slow_ms=400.0)
    code, out, _ = run(capsys, "baseline", "check", str(slower), str(base))
    assert code == 1
    assert any(
        line.split()[:3] == ["max", "test", "duration"] and line.endswith("FAILURE") for line in out.splitlines()
    )
    assert out.splitlines()[-1] == "1 performance regression(s) over the failure threshold"


def test_baseline_check_with_a_missing_baseline_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "baseline", "check", str(make_report(tmp_path)), str(tmp_path / "none.json"))
    assert code == 2
    assert err == f"dbscope baseline check: error: baseline '{tmp_path / 'none.json'}' does not exist\n"


# -- settings: pytest 9's config files --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pytest.toml", '[pytest]\ndbscope_url = "sqlite:///from-toml"\ndbscope_migrations = "migrations"\n'),
        (".pytest.toml", '[pytest]\ndbscope_url = "sqlite:///from-toml"\ndbscope_migrations = "migrations"\n'),
        (
            "pyproject.toml",
            '[tool.pytest]\ndbscope_url = "sqlite:///from-toml"\ndbscope_migrations = "migrations"\n',
        ),
    ],
)
def test_doctor_and_gc_read_pytest_9s_toml_config_files(
    project_dir: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    (project_dir / "pytest.ini").unlink()
    (project_dir / name).write_text(content)
    code, out, _ = run(capsys, "doctor", "--clones", "2")
    assert code == 0, out
    assert (
        f"url sqlite:///from-toml, migrations migrations, seed (none), strategy clone (from {project_dir / name} "
        in out
    )
    assert "no pytest config file" not in out
    assert (project_dir / "from-toml").is_dir()
    code, out, _ = run(capsys, "gc")
    assert code == 0 and "dbscope_tpl_" in out  # the template doctor cached there


def test_toml_settings_keep_their_native_types(project_dir: Path) -> None:
    (project_dir / "pytest.ini").unlink()
    (project_dir / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.pytest]
            dbscope_autouse = true
            dbscope_close_timeout = 2.5
            dbscope_env_var = ["APP_URL", "ASYNC_URL:async"]
            dbscope_unset_env = ["AWS_SECRET_ACCESS_KEY"]
            """
        )
    )
    config, source = load_settings({})
    assert source == str(project_dir / "pyproject.toml")
    assert (config.autouse, config.close_timeout, config.unset_env) == (True, 2.5, ("AWS_SECRET_ACCESS_KEY",))
    assert config.env_vars == (EnvVarSpec("APP_URL"), EnvVarSpec("ASYNC_URL", "async"))
    assert config.origin("close_timeout") == "dbscope_close_timeout in config file pyproject.toml"


def test_config_files_are_found_in_pytests_order_nearest_directory_first(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def url_from(*files: tuple[str, str]) -> str:
        for path in project_dir.rglob("*"):
            if path.name in CONFIG_FILES:
                path.unlink()
        for name, url in files:
            path = project_dir / name
            path.parent.mkdir(exist_ok=True)
            if name.endswith(".toml"):
                table = "[tool.pytest.ini_options]" if path.name == "pyproject.toml" else "[pytest]"
                path.write_text(f'{table}\ndbscope_url = "{url}"\n')
            else:
                path.write_text(f"[{'tool:pytest' if path.name == 'setup.cfg' else 'pytest'}]\ndbscope_url = {url}\n")
        config, _ = load_settings({}, cwd=project_dir / "sub")
        return config.url

    (project_dir / "sub").mkdir()
    # in one directory: pytest.toml, .pytest.toml, pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg
    order = ["pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"]
    for i, first in enumerate(order):
        assert url_from(*((name, f"sqlite:///{name}") for name in order[i:])) == f"sqlite:///{first}"
    # a nearer directory wins, whatever its file
    assert url_from(("setup.cfg", "sqlite:///parent"), ("sub/setup.cfg", "sqlite:///sub")) == "sqlite:///sub"
    # pytest.ini counts even without a [pytest] section; a pyproject.toml without pytest settings does not
    (project_dir / "sub" / "pytest.ini").write_text("[other]\n")
    assert url_from(("pytest.toml", "sqlite:///parent")) == "sqlite:///parent"  # (url_from removed sub/pytest.ini)
    (project_dir / "sub" / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    assert load_settings({}, cwd=project_dir / "sub")[1] == str(project_dir / "pytest.toml")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "pyproject.toml",
            '[tool.pytest]\ndbscope_url = "sqlite://"\n[tool.pytest.ini_options]\ndbscope_seed = "s.sql"\n',
            "cannot use both [tool.pytest] (native TOML types) and [tool.pytest.ini_options] (strings); "
            "pytest refuses it too",
        ),
        (
            "pytest.toml",
            'dbscope_url = "sqlite://"\n',
            "pytest configuration must be under a [pytest] table (found top-level options: dbscope_url)",
        ),
    ],
)
def test_a_toml_config_file_pytest_refuses_is_a_usage_error(
    project_dir: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    (project_dir / "pytest.ini").unlink()
    (project_dir / name).write_text(content)
    code, _, err = run(capsys, "gc")
    assert code == 2
    assert err == f"dbscope gc: error: {project_dir / name}: {message}\n"


# -- gc: SQLite -------------------------------------------------------------------------


def touch(path: Path, *, age_s: float = 0.0) -> None:
    path.write_bytes(b"")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


@pytest.fixture
def sqlite_dir(project_dir: Path) -> Path:
    dbs = project_dir / "dbs"
    dbs.mkdir()
    touch(dbs / "dbscope_ab12cd34_main_1.sqlite3", age_s=7200)
    touch(dbs / "dbscope_ab12cd34_main_1.sqlite3-journal", age_s=7200)
    touch(dbs / "dbscope_ef56ab78_gw0_3.sqlite3", age_s=5)
    touch(dbs / "dbscope_tpl_0123456789abcdef.sqlite3", age_s=86400)
    touch(dbs / "dbscope_tpl_0123456789abcdef.4242.a1b2c3.building", age_s=7200)
    touch(dbs / "app.sqlite3", age_s=86400)  # not dbscope's: never touched
    return dbs


def test_gc_lists_stale_sqlite_files_and_drops_nothing_without_yes(
    sqlite_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in sqlite_dir.iterdir())
    for args in ((), ("--dry-run",)):
        code, out, err = run(capsys, "gc", "--url", "sqlite:///dbs", *args)
        assert code == 0 and err == ""
        assert out.splitlines() == [
            "would drop dbscope_ab12cd34_main_1.sqlite3: a test database left by an earlier run, unchanged for 2.0 h",
            "keep dbscope_ef56ab78_gw0_3.sqlite3: changed 5 s ago: it may belong to a running suite",
            "would drop dbscope_tpl_0123456789abcdef.4242.a1b2c3.building: "
            "a template build that never finished, 2.0 h old",
            "keep dbscope_tpl_0123456789abcdef.sqlite3: cached template (give --templates to drop it)",
            "2 item(s) would be dropped; nothing was dropped: run again with --yes to drop them",
        ]
    assert sorted(p.name for p in sqlite_dir.iterdir()) == before


def test_gc_yes_drops_only_what_it_listed(sqlite_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "gc", "--url", "sqlite:///dbs", "--yes")
    assert code == 0 and out.splitlines()[-1] == "dropped 2 item(s)"
    assert sorted(p.name for p in sqlite_dir.iterdir()) == [
        "app.sqlite3",
        "dbscope_ef56ab78_gw0_3.sqlite3",
        "dbscope_tpl_0123456789abcdef.sqlite3",
    ]
    code, out, _ = run(capsys, "gc", "--url", "sqlite:///dbs", "--yes", "--templates")
    assert sorted(p.name for p in sqlite_dir.iterdir()) == ["app.sqlite3", "dbscope_ef56ab78_gw0_3.sqlite3"]


def test_gc_takes_the_url_from_the_project_settings(sqlite_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sqlite_dir.parent / "pytest.ini").write_text("[pytest]\ndbscope_url = sqlite:///dbs\n")
    code, out, _ = run(capsys, "gc", "--older-than", "1")
    assert code == 0
    assert "would drop dbscope_ef56ab78_gw0_3.sqlite3: a test database left by an earlier run, unchanged for 5 s" in out


def test_sqlite_garbage_of_a_missing_directory_is_nothing(tmp_path: Path) -> None:
    assert sqlite_garbage(tmp_path / "nope", stale_after_s=1, templates=False) == []


def test_gc_of_sqlite_memory_drops_the_directories_of_runs_whose_process_is_gone(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # sqlite:// keeps its databases in a directory of the run's on tmpfs (or in the temp directory)
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    dead, live = base / "dbscope_killed", base / "dbscope_running"
    for directory in (dead, live):
        directory.mkdir()
        (directory / "dbscope_reset.sqlite3").write_bytes(b"")
    owner = "import sys, os; from pathlib import Path; from dbscope.backends.sqlite import write_owner_file as w; "
    owner += "w(Path(sys.argv[1]), 'killed1'); print(os.getpid())"
    pid = subprocess.run([sys.executable, "-c", owner, str(dead)], check=True, capture_output=True, text=True).stdout
    write_owner_file(live, "running1")  # this process's: alive

    code, out, _ = run(capsys, "gc", "--url", "sqlite://")
    assert code == 0
    assert f"would drop {dead}: a run's databases; its process ({pid.strip()}) is gone\n" in out
    assert f"keep {live}: a running suite's databases (process {os.getpid()})\n" in out
    assert dead.exists()  # listed only

    code, out, _ = run(capsys, "gc", "--url", "sqlite://", "--yes")
    assert code == 0 and f"dropped {dead}: " in out
    assert not dead.exists() and (live / "dbscope_reset.sqlite3").exists()


def test_gc_yes_and_dry_run_together_is_a_usage_error(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "gc", "--yes", "--dry-run")
    assert code == 2 and "argument --dry-run: not allowed with argument --yes" in err


def test_gc_with_a_bad_url_names_the_option(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "gc", "--url", "nonsense")
    assert code == 2
    assert err.startswith("dbscope gc: error: dbscope_url = 'nonsense' (from --url on the command line) is not valid: ")


# -- gc: PostgreSQL ---------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    name: str
    reason: str
    action: str


def test_gc_passes_its_options_to_the_postgresql_collector(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg")
    from dbscope.backends import postgresql

    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_collect(url: str, **options: Any) -> list[Item]:
        calls.append((url, options))
        return [
            Item("dbscope_tpl_abc", "template in use by live run 1234", "keep"),
            Item("dbscope_9f8e_main_2", "its run 9f8e is gone (pid 999 is not running)", "drop"),
        ]

    monkeypatch.setattr(postgresql, "collect_garbage", fake_collect)
    url = "postgresql://me:secret@localhost:5432/postgres"
    code, out, _ = run(capsys, "gc", "--url", url)
    assert code == 0
    assert out.splitlines() == [
        "keep dbscope_tpl_abc: template in use by live run 1234",
        "would drop dbscope_9f8e_main_2: its run 9f8e is gone (pid 999 is not running)",
        "1 item(s) would be dropped; nothing was dropped: run again with --yes to drop them",
    ]
    code, out, _ = run(
        capsys, "gc", "--url", url, "--yes", "--allow-remote", "--older-than", "30", "--templates", "--kept"
    )
    assert out.splitlines()[-1] == "dropped 1 item(s)"
    assert calls == [
        (url, {"dry_run": True, "allow_remote": False}),
        (url, {"dry_run": False, "allow_remote": True, "stale_after_s": 30.0, "templates": True, "kept": True}),
    ]


def test_gc_refuses_a_remote_server_without_allow_remote(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("psycopg")
    code, out, err = run(capsys, "gc", "--url", "postgresql://me:secret@203.0.113.5:5432/postgres")
    assert code == 1 and out == ""
    assert err.startswith("dbscope gc: refusing to use the PostgreSQL server at 203.0.113.5")
    assert "secret" not in err


def test_doctor_times_both_clone_strategies_on_a_postgresql_server(
    project_dir: Path, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    code, out, err = run(capsys, "doctor", "--url", pg_url, "--clones", "2")
    assert code == 0, out + err
    (line,) = [line for line in out.splitlines() if "clone strategy:" in line]
    match = re.fullmatch(
        r"  ok       clone strategy: (FILE_COPY|WAL_LOG) ([\d.]+) ms, (FILE_COPY|WAL_LOG) ([\d.]+) ms "
        r"\(median of 5 clones each, interleaved\): dbscope uses (FILE_COPY|WAL_LOG)",
        line,
    )
    assert match, line
    chosen, other = match[1], match[3]
    assert chosen == match[5] == "FILE_COPY" and other == "WAL_LOG"  # the default, no environment variable
    advised = f"set DBSCOPE_PG_CLONE_STRATEGY={other.lower()}" in out
    assert advised == (float(match[4]) < 0.8 * float(match[2]))


def test_gc_on_a_real_postgresql_server_only_lists(
    project_dir: Path, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    code, out, err = run(capsys, "gc", "--url", pg_url)
    assert code == 0, err
    assert out.splitlines()[-1] in ("nothing to drop", f"{pg_url}: nothing dbscope made is left") or out.splitlines()[
        -1
    ].endswith("nothing was dropped: run again with --yes to drop them")


# -- doctor -----------------------------------------------------------------------------


def test_doctor_on_a_healthy_project(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "doctor")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1].startswith(
        "  ok       settings: url sqlite://, migrations migrations, seed (none), strategy clone (from "
    )
    assert lines[2].startswith("  ok       migrations: 1 step(s), seed 0 step(s), fingerprint ")
    assert lines[3] == "  ok       backend: SQLite in memory (sqlite://) answers"
    assert lines[4].startswith("  ok       template: built from scratch in ")
    assert lines[5] == "  n/a      cached template: none was cached for these migrations; one is now"
    assert lines[6].startswith("  ok       clones: 20 clones: median ")
    assert lines[-1] == "no problems found"


def test_doctor_compares_the_cached_template_with_a_fresh_build(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "doctor", "--url", "sqlite:///dbs", "--clones", "3")
    assert code == 0 and "  n/a      cached template: none was cached for these migrations; one is now" in out
    code, out, _ = run(capsys, "doctor", "--url", "sqlite:///dbs", "--clones", "3")
    assert code == 0 and "  ok       cached template: identical to a fresh build" in out
    [cached] = (project_dir / "dbs").glob("dbscope_tpl_*.sqlite3")
    conn = sqlite3.connect(cached)
    conn.execute("INSERT INTO users (name) VALUES ('edited by hand')")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "doctor", "--url", "sqlite:///dbs", "--clones", "3")
    assert code == 1
    assert "  PROBLEM  cached template: it differed from a fresh build of the same migrations (" in out
    assert out.splitlines()[-1] == "1 problem(s) found"
    assert not list((project_dir / "dbs").glob("dbscope_*_doctor_*"))  # its clones are dropped


def test_doctor_reports_a_broken_migration_as_a_problem(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project_dir / "migrations" / "0002_broken.sql").write_text("INSERT INTO nowhere VALUES (1);\n")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "  PROBLEM  template: migration failed in " in out and "no such table: nowhere" in out


def test_doctor_reports_a_bad_setting_with_its_source(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project_dir / "pytest.ini").write_text("[pytest]\ndbscope_strategy = sideways\n")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    problem = "dbscope_strategy = 'sideways' (from dbscope_strategy in config file pytest.ini) is not valid"
    assert f"  PROBLEM  settings: {problem}" in out


def test_doctor_reads_pyproject_and_the_environment_wins(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "pytest.ini").unlink()
    (project_dir / "pyproject.toml").write_text(
        textwrap.dedent(
            """
        [tool.pytest.ini_options]
        dbscope_migrations = "migrations"
        dbscope_url = "sqlite:///from-pyproject"
        """
        )
    )
    monkeypatch.setenv("DBSCOPE_URL", "sqlite:///from-env")
    code, out, _ = run(capsys, "doctor", "--clones", "2")
    assert code == 0
    assert "url sqlite:///from-env, migrations migrations" in out and "pyproject.toml" in out
    assert (project_dir / "from-env").is_dir()


@pytest.mark.parametrize("where", ["project", "tmpfs"])
def test_doctor_advises_tmpfs_for_database_files_on_disk(
    project_dir: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    if where == "tmpfs":
        if filesystem_type("/dev/shm") != "tmpfs":
            pytest.skip("no tmpfs at /dev/shm on this machine")
        directory = Path(tempfile.mkdtemp(prefix="dbscope_doctor_test_", dir="/dev/shm"))
    else:
        directory = project_dir / "dbs"
    try:
        code, out, _ = run(capsys, "doctor", "--url", f"sqlite:///{directory}", "--clones", "2")
    finally:
        if where == "tmpfs":
            shutil.rmtree(directory, ignore_errors=True)
    assert code == 0
    fs = filesystem_type(project_dir)
    advice = f"  - the database files are on {fs} ({directory}): put them on tmpfs"
    assert (advice in out) is (where == "project" and fs not in MEMORY_FILESYSTEMS)


# -- the command itself -----------------------------------------------------------------


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "the following arguments are required: COMMAND" in err


def test_python_dash_m_dbscope_runs_the_command(tmp_path: Path) -> None:
    path = make_report(tmp_path, leaks=0)
    done = subprocess.run(
        [sys.executable, "-m", "dbscope", "report", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "scopes created: 3, destroyed: 3" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "dbscope", "report", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_the_console_script_is_installed() -> None:
    script = shutil.which("dbscope", path=os.path.dirname(sys.executable)) or shutil.which("dbscope")
    if script is None:
        pytest.skip("the dbscope console script is not on PATH (not installed with pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"dbscope {dbscope.__version__}"
