"""What a long migration history costs before the first test, with and without the template cache.

``sqlite://`` keeps each built template's image in the project's ``.dbscope/cache``, so a
later run, and every xdist worker but the one that built it, loads it instead of
migrating. Whole pytest runs of one trivial `db` test on a generated history of MIGRATIONS
``.sql`` files (one table, an index and a few rows each), interleaved, ROUNDS rounds:

  * cold: ``--dbscope-rebuild`` (every process migrates, as before the cache)
  * warm: the image cached by an earlier run
  * cold and warm under ``-n 2`` (cold: one worker builds while the other waits for it)

Each run's wall time from start to exit, median over rounds; the table shows the saving.

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
    (root / "test_one.py").write_text("def test_one(db):\n    assert db.execute('SELECT count(*) FROM t0').scalar() == 5\n")


def run(root: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


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
        run(root, [])  # the first build, and imports warmed
        for _ in range(args.rounds):
            for name, extra in variants.items():
                times[name].append(run(root, extra))

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
        json.dumps({"migrations": args.migrations, "rounds": args.rounds, "seconds": times, "medians": medians}, indent=2)
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
