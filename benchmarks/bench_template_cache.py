"""What a long migration history costs before the first test, with and without the template cache.

``sqlite://`` keeps each built template's image in the project's ``.dbscope/cache``, so a
later run, and every xdist worker but the one that built it, loads it instead of
migrating. Whole pytest runs of one trivial `db` test on a generated history of MIGRATIONS
``.sql`` files (one table, an index and a few rows each), interleaved, ROUNDS rounds:

  * cold: ``--dbscope-rebuild`` (every process migrates, as before the cache)
  * warm: the image cached by an earlier run
  * cold and warm under ``-n 2`` (cold: one worker builds while the other waits for it)

Each run's wall time from start to exit, median over rounds; the table shows the saving.
First, in one process and without pytest's start-up around it: a template built by running
the migrations against one loaded from the cache (``SQLiteBackend.template``), interleaved.

Usage: python benchmarks/bench_template_cache.py [--migrations 300] [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_project(root: Path, migrations: int) -> None:
    directory = root / "migrations"
    directory.mkdir()
    for n in range(migrations):
        (directory / f"{n:04d}_table_{n}.sql").write_text(
            f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ref INTEGER, created TEXT);\n"
            f"CREATE INDEX t{n}_name ON t{n} (name);\n"
            + "".join(f"INSERT INTO t{n} (name, ref) VALUES ('row {r}', {r});\n" for r in range(5))
        )
    (root / "pytest.ini").write_text("[pytest]\ndbscope_migrations = migrations\n")
    (root / "test_one.py").write_text(
        "def test_one(db):\n    assert db.execute('SELECT count(*) FROM t0').scalar() == 5\n"
    )


def run(root: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


def template_times(root: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds until the template is ready in a new backend: migrated, or loaded from the cache."""
    from dbscope.backends.sqlite import SQLiteBackend, TemplateCache
    from dbscope.migrations import MigrationSet, load_migrations

    migrations = load_migrations("migrations", setting="dbscope_migrations", base_dir=str(root))
    cache = TemplateCache(root / ".dbscope" / "cache")
    times: dict[str, list[float]] = {"built (migrations run)": [], "loaded from the cache": []}
    for _ in range(rounds):
        for name, rebuild in (("built (migrations run)", True), ("loaded from the cache", False)):
            backend = SQLiteBackend(cache=cache)
            try:
                started = time.perf_counter()
                backend.template(migrations, MigrationSet(), rebuild=rebuild)
                times[name].append(time.perf_counter() - started)
            finally:
                backend.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--migrations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=str(HERE / "results" / "template_cache.json"))
    args = parser.parse_args()

    variants = {
        "serial, cold (--dbscope-rebuild)": ["--dbscope-rebuild"],
        "serial, warm (cached)": [],
        "-n 2, cold (--dbscope-rebuild)": ["-n", "2", "--dbscope-rebuild"],
        "-n 2, warm (cached)": ["-n", "2"],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="dbscope_bench_cache_") as tmp:
        root = Path(tmp)
        write_project(root, args.migrations)
        in_process = template_times(root, max(args.rounds, 7))
        run(root, [])  # the first build, and imports warmed
        for _ in range(args.rounds):
            for name, extra in variants.items():
                times[name].append(run(root, extra))

    built, loaded = (statistics.median(v) for v in in_process.values())
    print(f"a template of {args.migrations} migrations, ready in a new process's backend (median):")
    print(
        f"  built (migrations run) {built * 1000:.1f} ms, loaded from the cache {loaded * 1000:.1f} ms "
        f"({built / loaded:.1f}x)"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"time of a whole run of one `db` test, {args.migrations} migrations, median of {args.rounds} rounds")
    print(f"{'run':<34} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:<34} {medians[name]:>9.3f} {min(values):>7.3f} {max(values):>7.3f}")
    for mode in ("serial", "-n 2"):
        cold, warm = medians[f"{mode}, cold (--dbscope-rebuild)"], medians[f"{mode}, warm (cached)"]
        print(f"{mode}: the cache saves {cold - warm:.3f} s a run ({cold / warm:.2f}x)")

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "migrations": args.migrations,
                "rounds": args.rounds,
                "seconds": times,
                "medians": medians,
                "template_seconds": in_process,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
