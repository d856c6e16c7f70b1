"""Apply the festival's migrations (and optionally the seed data) to DATABASE_URL.

    DATABASE_URL=sqlite:///festival.db python -m festival.migrate --seed

Applied migrations are recorded in ``schema_migrations``; running it again applies only
new files. (Under dbscope the suite does not use this: dbscope builds a template
database from migrations/ and seed.sql once and clones it for every test.)
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from .database import get_database

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
SEED = ROOT / "seed.sql"

__all__ = ["apply", "main"]


def apply(conn: sqlite3.Connection, *, seed: bool = False) -> list[str]:
    """Apply the migrations not yet recorded on this connection's database; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT DEFAULT CURRENT_TIMESTAMP)"
    )
    conn.commit()
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name in done:
            continue
        conn.executescript(path.read_text())
        conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [path.name])
        conn.commit()
        applied.append(path.name)
    if seed and applied:
        conn.executescript(SEED.read_text())
        conn.commit()
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", action="store_true", help="insert seed.sql after a first migration")
    options = parser.parse_args(argv)
    database = get_database()
    raw = database.engine.raw_connection()
    try:
        names = apply(raw.driver_connection, seed=options.seed)  # type: ignore[arg-type]
    finally:
        raw.close()
        database.close()
    print(f"applied {len(names)} migration(s) to {database.url}: {', '.join(names) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
