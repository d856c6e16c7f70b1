"""What is left of ``sqlite://`` databases on disk: each a file in the run's directory on tmpfs."""

from __future__ import annotations

import os
from pathlib import Path

#: a SQLite database's files: the database and the companions its journal modes write
COMPANIONS = ("", "-journal", "-wal", "-shm")


def database_files(path: str | Path) -> list[str]:
    """Which of a database's files exist (the file, -journal, -wal, -shm): [] once it was dropped."""
    return [f"{path}{suffix}" for suffix in COMPANIONS if os.path.lexists(f"{path}{suffix}")]


def run_entries(directory: Path) -> set[str]:
    """The backend's directory, as database names: each -journal, -wal, -shm folded into its database."""
    names = set()
    for entry in directory.iterdir():
        name = entry.name
        for suffix in COMPANIONS[1:]:
            name = name.removesuffix(suffix)
        names.add(name)
    return names
