"""The example Django project's suite under -n 2: pytest-django alone against dbscope.django.

Runs examples/django_project (copied into a temporary directory, with FILLER extra
migrations that each create a table, for a longer migration history) four ways per engine:

  * pytest-django, fresh        --create-db: every worker migrates its databases
  * pytest-django, --reuse-db   a second run keeping the first run's databases (PostgreSQL and
                                MariaDB; on SQLite the test databases are in memory, so nothing
                                is kept)
  * dbscope, cold cache         --dbscope-django with no template yet: built once, then cloned
  * dbscope, warm cache         the same again: every worker clones the kept templates

For each run: the wall time, the time until a worker's databases were ready (the
``django_db_setup`` fixture's setup, the median over the workers) and the median teardown of
a transactional test (pytest-django's flush against dbscope's restore, with the leak probe's
look and Django's own teardown), measured by a probe plugin this script writes next to the
copy; for dbscope's runs also the mean restore alone and how many restores were partial
(only the tables written: PostgreSQL's write tracking), from dbscope's JSON report. The
machine's load average is printed: on a shared machine, read the figures with it.

Usage: python benchmarks/bench_django.py [--engines sqlite,postgresql,mysql] [--filler 40] [--json PATH]
                                        [--src DIR]
(--src: import dbscope from DIR, e.g. an earlier commit's ``git archive <commit> src | tar -x``,
to measure before and after a change with the same script)
(mysql: MariaDB or MySQL as root on 127.0.0.1:3306, through PyMySQL)
(run with the Django venv: .venv-django/bin/python benchmarks/bench_django.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "django_project"
RESULTS = ROOT / "benchmarks" / "results" / "bench_django.json"

PROBE = '''
"""Timings for bench_django.py: django_db_setup's setup, and transactional tests' teardown."""
import json, os, time
import pytest

_figures = {"setup_s": None, "teardowns": []}
_transactional = set()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if fixturedef.argname != "django_db_setup":
        return (yield)
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        _figures["setup_s"] = time.perf_counter() - started


def pytest_runtest_logreport(report):
    if report.when == "teardown" and report.nodeid in _transactional:
        _figures["teardowns"].append(report.duration)


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = "transactional_db" in getattr(item, "fixturenames", ()) or (
            marker is not None and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences"))
        )
        if transactional:
            _transactional.add(item.nodeid)


def pytest_sessionfinish(session):
    out = os.environ.get("BENCH_DJANGO_OUT")
    if out and _figures["setup_s"] is not None:
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(_figures, f)
'''


def filler_migrations(project: Path, count: int) -> None:
    """``count`` migrations of an app of their own, each creating a table: a longer history."""
    app = project / "filler"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    models = ["from django.db import models\n"]
    for i in range(1, count + 1):
        previous = f"[('filler', '{i - 1:04d}_step')]" if i > 1 else "[]"
        (app / "migrations" / f"{i:04d}_step.py").write_text(
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = {previous}\n"
            "    operations = [\n"
            f"        migrations.CreateModel('Thing{i}', [\n"
            "            ('id', models.BigAutoField(primary_key=True)),\n"
            "            ('name', models.CharField(max_length=50, db_index=True)),\n"
            "            ('amount', models.IntegerField(default=0)),\n"
            "        ]),\n"
            "    ]\n"
        )
        models.append(
            f"\n\nclass Thing{i}(models.Model):\n"
            "    name = models.CharField(max_length=50, db_index=True)\n"
            "    amount = models.IntegerField(default=0)\n"
        )
    (app / "models.py").write_text("".join(models))
    settings = project / "project" / "settings.py"
    settings.write_text(settings.read_text().replace('    "audit",\n]', '    "audit",\n    "filler",\n]', 1))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


#: --src: the dbscope source tree the runs import (None: the installed one)
SOURCE: Path | None = None


def run(project: Path, env: dict[str, str], args: list[str]) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="bench-django-out-"))
    report = out / "dbscope-report.json.out"  # not *.json: the probe's files are read by that glob
    if "--dbscope-django" in args:
        args = [*args, f"--dbscope-report={report}"]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "bench_django_probe", "-n", "2", *args],
        cwd=project,
        env={
            **env,
            "BENCH_DJANGO_OUT": str(out),
            "PYTHONPATH": os.pathsep.join(str(p) for p in (SOURCE, project.parent) if p is not None),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - started
    outcome = (result.stdout.strip().splitlines() or ["?"])[-1].strip("= ")
    if result.returncode not in (0, 1):  # 1: tests failed, a result too (--reuse-db's flushed rows)
        raise SystemExit(
            f"bench_django: pytest {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
        )
    workers = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    rows = json.loads(report.read_text()).get("django", []) if report.exists() else []
    shutil.rmtree(out, ignore_errors=True)
    teardowns = [t for w in workers for t in w["teardowns"]]
    restores = sum(int(row["restores"]) for row in rows)
    return {
        "wall_s": round(wall, 2),
        "ready_s": round(statistics.median(w["setup_s"] for w in workers), 3) if workers else None,
        "transactional_teardown_ms": round(1000 * statistics.median(teardowns), 1) if teardowns else None,
        "transactional_tests": len(teardowns),
        # dbscope's restores alone (every alias, every worker): their mean, and how many were partial
        "restore_mean_ms": round(1000 * sum(float(row["restore_s"]) for row in rows) / restores, 2)
        if restores
        else None,
        "restores": restores,
        "partial_restores": sum(int(row.get("partial_restores", 0)) for row in rows),
        "outcome": outcome,
    }


def drop_pg(prefix: str) -> None:
    """The run's test databases (pytest-django keeps them under --reuse-db) and the templates it built."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT d.datname FROM pg_database d LEFT JOIN pg_shdescription s ON s.objoid = d.oid "
                "WHERE d.datname LIKE %s OR s.description LIKE %s",
                [f"test_{prefix}%", f"dbscope.django template of % ({prefix}%"],
            )
        ]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_mysql(prefix: str) -> None:
    """The run's test databases (kept under --reuse-db) and the templates it built, on MariaDB/MySQL."""
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s", [f"test\\_{prefix}%"]
            )
            names = [str(r[0]) for r in cursor.fetchall()]
            cursor.execute(
                "SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = 'dbscope_django_template'"
            )
            for (template,) in cursor.fetchall():
                cursor.execute(f"SELECT settings_database FROM `{template}`.dbscope_django_template")
                if any(str(row[0]).startswith(prefix) for row in cursor.fetchall()):
                    names.append(str(template))
            for name in names:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def bench_engine(engine: str, filler: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-django-"))
    project = work / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".dbscope", "__pycache__", "*.sqlite3"))
    if filler:
        filler_migrations(project, filler)
    (work / "bench_django_probe.py").write_text(PROBE)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DBSCOPE_", "DJANGO_"))}
    env.update(DJANGO_DB=engine, DJANGO_DB_PREFIX=prefix)
    rows: dict[str, Any] = {}
    try:
        print(f"[{engine}] load {load()}", flush=True)
        rows["pytest-django fresh"] = run(project, env, ["-p", "no:dbscope", "--create-db"])
        if engine in ("postgresql", "mysql"):
            run(project, env, ["-p", "no:dbscope", "--reuse-db", "--create-db"])  # make the databases to keep
            rows["pytest-django --reuse-db"] = run(project, env, ["-p", "no:dbscope", "--reuse-db"])
        rows["dbscope cold cache"] = run(project, env, ["--dbscope-django"])
        rows["dbscope warm cache"] = run(project, env, ["--dbscope-django"])
        print(f"[{engine}] load {load()}", flush=True)
    finally:
        if engine == "postgresql":
            drop_pg(prefix)
        elif engine == "mysql":
            drop_mysql(prefix)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--filler", type=int, default=40, help="extra migrations, one table each")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--src", type=Path, default=None, help="import dbscope from this source tree")
    options = parser.parse_args()
    global SOURCE
    SOURCE = options.src.resolve() if options.src else None
    results: dict[str, Any] = {
        "filler_migrations": options.filler,
        "src": str(SOURCE) if SOURCE else None,
        "load_before": load(),
        "engines": {},
    }
    for engine in options.engines.split(","):
        results["engines"][engine] = bench_engine(engine, options.filler)
    results["load_after"] = load()
    print()
    print(
        f"{'engine':<11} {'run (-n 2)':<26} {'wall s':>7} {'ready s':>8} "
        f"{'tx teardown ms':>15} {'tx tests':>9} {'restore ms':>11} {'partial':>8}  outcome"
    )
    for engine, rows in results["engines"].items():
        for name, row in rows.items():
            ready = "-" if row["ready_s"] is None else f"{row['ready_s']:.3f}"
            teardown = "-" if row["transactional_teardown_ms"] is None else f"{row['transactional_teardown_ms']:.1f}"
            restore = "-" if row["restore_mean_ms"] is None else f"{row['restore_mean_ms']:.2f}"
            partial = f"{row['partial_restores']}/{row['restores']}" if row["restores"] else "-"
            print(
                f"{engine:<11} {name:<26} {row['wall_s']:>7.2f} {ready:>8} {teardown:>15} "
                f"{row['transactional_tests']:>9} {restore:>11} {partial:>8}  {row['outcome']}"
            )
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {options.json}")


if __name__ == "__main__":
    main()
