"""SQLite's backend types: opening, garbage collection (``dbscope gc``) and checks (``dbscope doctor``).

``MEMORY`` serves ``sqlite://``, ``FILES`` ``sqlite:///some/dir`` and ``sqlite+file://``
(see the registry). What runs leave behind in files:

* ``dbscope_<run>_<label>.sqlite3`` (a scope's database, with its -journal/-wal/-shm
  companions) and ``dbscope_tpl_*.building`` (a template build that never finished):
  garbage once unchanged for an hour (a running suite touches its files all the time);
* ``dbscope_tpl_<fingerprint>.sqlite3``: a cached template, dropped only on request;
* ``dbscope_*`` directories that ``sqlite://`` and ``sqlite+file://`` runs made in /dev/shm
  or the temp dir: garbage once their process is gone (the next run sweeps them too);
* ``.dbscope/failed/*.sqlite3``: databases of failed tests that ``--dbscope-keep-failed``
  saved, dropped only on request (``dbscope gc --kept``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import DbscopeError
from .base import Backend, Checkup, GarbageList, GarbageRequest, SharedServer
from .hostfs import MEMORY_FILESYSTEMS, filesystem_type
from .sqlite import KEPT_DIRECTORY, PREFIX, RunOwner, SQLiteBackend, TemplateCache

if TYPE_CHECKING:
    from ..config import Config
    from ..urls import BackendURL

__all__ = ["FILES", "MEMORY", "FileGarbage", "kept_garbage", "run_directory_garbage", "sqlite_garbage"]

#: A file unchanged for this long belongs to no running suite (``dbscope gc --older-than``).
STALE_AFTER_S = 3600.0
#: A clone slower than this is worth advice (benchmarks/bench_sqlite.py times a clone of a 30-table
#: schema on tmpfs: well under a millisecond).
SLOW_CLONE_MS = 5.0


@dataclass(frozen=True)
class FileGarbage:
    """A file or directory dbscope left, and what gc does with it: the shape of PostgreSQL's GarbageItem."""

    name: str
    reason: str
    action: str  # "drop" or "keep"
    path: Path | None = None


def _age(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def sqlite_garbage(
    directory: Path, *, stale_after_s: float, templates: bool, now: float | None = None
) -> list[FileGarbage]:
    """dbscope's files in a SQLite directory: stale scope databases and unfinished templates are garbage.

    A cached template is kept unless ``templates``.
    """
    now = time.time() if now is None else now
    items = []
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DbscopeError(f"cannot list {directory}: {exc.strerror}") from None
    for path in entries:
        name = path.name
        if not name.startswith(PREFIX) or not path.is_file():
            continue
        age = now - path.stat().st_mtime
        stale = age >= stale_after_s
        if name.startswith(f"{PREFIX}tpl_") and name.endswith(".sqlite3"):
            if templates:
                items.append(FileGarbage(name, "cached template; the next run builds it again", "drop", path))
            else:
                items.append(FileGarbage(name, "cached template (give --templates to drop it)", "keep", path))
        elif name.startswith(f"{PREFIX}tpl_") and name.endswith(".building"):
            reason = f"a template build that never finished, {_age(age)} old"
            items.append(
                FileGarbage(
                    name,
                    reason if stale else f"a template being built ({_age(age)} old)",
                    "drop" if stale else "keep",
                    path,
                )
            )
        elif name.endswith(("-journal", "-wal", "-shm")):
            if Path(name.rsplit("-", 1)[0]).suffix == ".sqlite3" and (directory / name.rsplit("-", 1)[0]).exists():
                continue  # goes with its database
            if stale:
                items.append(
                    FileGarbage(name, f"a journal whose database is gone, unchanged for {_age(age)}", "drop", path)
                )
        elif name.endswith(".sqlite3"):
            if stale:
                items.append(
                    FileGarbage(
                        name, f"a test database left by an earlier run, unchanged for {_age(age)}", "drop", path
                    )
                )
            else:
                items.append(
                    FileGarbage(name, f"changed {_age(age)} ago: it may belong to a running suite", "keep", path)
                )
    return items


def run_directory_garbage(
    bases: Sequence[Path], *, stale_after_s: float, now: float | None = None
) -> list[FileGarbage]:
    """The private directories (``dbscope_*``) that ``sqlite://`` and ``sqlite+file://`` runs made in ``bases``.

    A directory whose owner files all name processes of this host that are gone is garbage
    (a killed run's; the next run on the host sweeps it too); one whose process lives is
    kept. One without an owner file (being set up) or of another host is judged by age.
    """
    now = time.time() if now is None else now
    items = []
    for base in bases:
        try:
            entries = sorted(p for p in base.glob(f"{PREFIX}*") if p.is_dir() and not p.is_symlink())
        except OSError:
            continue
        for path in entries:
            try:
                owners = [RunOwner.read(owner) for owner in path.glob(f"{PREFIX}*.owner")]
                newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
            except OSError:  # another user's, or gone meanwhile
                continue
            known = [owner for owner in owners if owner is not None]
            living = [owner for owner in known if owner.here and not owner.gone]
            if living:
                pids = ", ".join(str(owner.pid) for owner in living)
                items.append(FileGarbage(str(path), f"a running suite's databases (process {pids})", "keep", path))
            elif known and all(owner.gone for owner in known):
                pids = ", ".join(str(owner.pid) for owner in known)
                items.append(FileGarbage(str(path), f"a run's databases; its process ({pids}) is gone", "drop", path))
            elif now - newest >= stale_after_s:
                items.append(
                    FileGarbage(str(path), f"a run's databases, unchanged for {_age(now - newest)}", "drop", path)
                )
            else:
                items.append(
                    FileGarbage(
                        str(path), f"changed {_age(now - newest)} ago: it may belong to a running suite", "keep", path
                    )
                )
    return items


def run_directory_bases() -> list[Path]:
    """Where runs make their private directories: /dev/shm and the temp directory."""
    bases = [Path("/dev/shm"), Path(tempfile.gettempdir())]
    return [base for base in dict.fromkeys(bases) if base.is_dir()]


def template_cache(config: Config | None) -> TemplateCache | None:
    """Where ``sqlite://`` keeps its built templates: ``.dbscope/cache`` in the project (none without one)."""
    if config is None or config.base_dir is None:
        return None
    return TemplateCache(Path(config.base_dir) / ".dbscope" / "cache")


def kept_directories(config: Config) -> list[Path]:
    """Where ``--dbscope-keep-failed`` saved databases: ``.dbscope/failed/`` of this directory and the project's."""
    found: list[Path] = []
    for base in (Path.cwd(), Path(config.base_dir) if config.base_dir else None):
        if base is not None and (base / KEPT_DIRECTORY).resolve() not in [p.resolve() for p in found]:
            found.append(base / KEPT_DIRECTORY)
    return found


def kept_garbage(directories: Sequence[Path], *, kept: bool, now: float | None = None) -> list[FileGarbage]:
    """The databases of failed tests saved in ``directories``: dropped only when ``kept``."""
    now = time.time() if now is None else now
    items = []
    for directory in directories:
        try:
            entries = sorted(p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.suffix == ".sqlite3")
        except OSError:
            continue
        for path in entries:
            shown = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
            age = _age(now - path.stat().st_mtime)
            if kept:
                items.append(FileGarbage(shown, f"a failed test's database, kept {age} ago", "drop", path))
            else:
                items.append(
                    FileGarbage(
                        shown, f"a failed test's database, kept {age} ago (give --kept to drop it)", "keep", path
                    )
                )
    return items


def remove(item: FileGarbage) -> FileGarbage:
    """Delete what ``item`` names (a database with its journals, or a run's directory); say so if that fails."""
    assert item.path is not None
    try:
        if item.path.is_dir():
            for child in item.path.iterdir():
                if child.name.startswith(PREFIX):
                    child.unlink(missing_ok=True)
            item.path.rmdir()
        else:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{item.path}{suffix}").unlink(missing_ok=True)
    except OSError as exc:
        return FileGarbage(item.name, f"{item.reason}; removing it failed: {exc.strerror}", "keep", item.path)
    return item


def sqlite_digest(path: Path) -> str:
    """A digest of a database's whole contents (schema and rows), to compare two builds."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            digest = hashlib.sha256()
            for line in conn.iterdump():
                digest.update(line.encode())
            return digest.hexdigest()[:16]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DbscopeError(f"cannot read {path}: {exc}") from None


class _SQLiteType:
    """What SQLite in memory and in files share."""

    in_memory: bool

    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def open(self, url: BackendURL, *, run_id: str, config: Config | None = None) -> Backend:
        cache = template_cache(config) if self.in_memory else None
        # cast: SQLiteMemoryDatabase.dialect is typed as the class, the Protocol wants Dialect
        return cast("Backend", SQLiteBackend(directory=url.path, in_memory=self.in_memory, run_id=run_id, cache=cache))

    @property
    def shares_server(self) -> bool:
        return False  # every worker has its own databases

    def start_shared_server(self, url: BackendURL, *, config: Config) -> SharedServer | None:
        return None

    def advise(self, url: BackendURL, backend: Backend, *, config: Config, clone_ms: float, checkup: Checkup) -> None:
        directory = getattr(backend, "directory", None)
        if directory is not None:
            fs = filesystem_type(directory)
            if fs and fs not in MEMORY_FILESYSTEMS:
                checkup.advise(
                    f"the database files are on {fs} ({directory}): put them on tmpfs (sqlite:////dev/shm/dbscope) "
                    "or use sqlite:// unless an app in another process must open them"
                )
        if clone_ms > SLOW_CLONE_MS:
            checkup.advise(
                f"a SQLite clone takes {clone_ms:.1f} ms (about 0.3 ms is usual for a 30-table schema): "
                "keep dbscope_seed small; load big fixtures in the tests that need them"
            )


class _MemoryType(_SQLiteType):
    in_memory = True

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        stale = request.stale_after_s if request.stale_after_s is not None else STALE_AFTER_S
        items = run_directory_garbage(run_directory_bases(), stale_after_s=stale)
        cache = template_cache(config)
        if cache is not None:
            for image in sorted(cache.directory.glob(f"{PREFIX}tpl_*.image")):
                if request.templates:
                    items.append(FileGarbage(image.name, "cached template", "drop", image))
                else:
                    items.append(
                        FileGarbage(image.name, "cached template (give --templates to drop it)", "keep", image)
                    )
        items += kept_garbage(kept_directories(config), kept=request.kept)
        return GarbageList(_removed(items, request))

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        cache = cast("SQLiteBackend", backend).cache
        if cache is None:
            return lambda: checkup.na("cached template", "no project directory to keep one in")

        def digest() -> str | None:
            image = cache.load(fingerprint)
            return None if image is None else hashlib.sha256(image).hexdigest()[:16]

        def others() -> list[str]:
            mine = cache.path(fingerprint).name
            return sorted(p.name for p in cache.directory.glob(f"{PREFIX}tpl_*.image") if p.name != mine)

        return _compare_cached(checkup, digest, others, cache.directory)


class _FilesType(_SQLiteType):
    in_memory = False

    def garbage(self, url: BackendURL, *, config: Config, request: GarbageRequest) -> GarbageList:
        stale = request.stale_after_s if request.stale_after_s is not None else STALE_AFTER_S
        if url.path is None:
            items = run_directory_garbage(run_directory_bases(), stale_after_s=stale)
        else:
            directory = Path(str(url.resolved(config.base_dir).path))
            items = sqlite_garbage(directory, stale_after_s=stale, templates=request.templates)
        items += kept_garbage(kept_directories(config), kept=request.kept)
        return GarbageList(_removed(items, request))

    def inspect_cache(self, backend: Backend, *, fingerprint: str, checkup: Checkup) -> Callable[[], None]:
        directory = Path(cast("SQLiteBackend", backend).directory or ".")
        cached = directory / f"{PREFIX}tpl_{fingerprint}.sqlite3"
        return _compare_cached(
            checkup,
            lambda: sqlite_digest(cached) if cached.exists() else None,
            lambda: sorted(p.name for p in directory.glob(f"{PREFIX}tpl_*.sqlite3") if p.name != cached.name),
            directory,
        )


def _compare_cached(
    checkup: Checkup, digest: Callable[[], str | None], others: Callable[[], list[str]], where: Path
) -> Callable[[], None]:
    """Doctor's check of a cached template: ``digest`` before a fresh build, compared with it after."""
    before: str | None = None
    try:
        before = digest()
    except DbscopeError as exc:
        checkup.problem("cached template", str(exc))

    def after() -> None:
        older = others()
        if older:
            checkup.advise(
                f"{len(older)} cached template(s) of older migrations in {where}: "
                "`dbscope gc --templates --yes` removes them"
            )
        if before is None:
            checkup.na("cached template", "none was cached for these migrations; one is now")
            return
        fresh = digest()
        if fresh == before:
            checkup.ok("cached template", "identical to a fresh build")
        else:
            checkup.problem(
                "cached template",
                f"it differed from a fresh build of the same migrations ({before} vs {fresh}) and has been "
                "replaced: a migration or seed step is not deterministic (time, random values) or the file "
                "was edited",
            )

    return after


def _removed(items: list[FileGarbage], request: GarbageRequest) -> list[FileGarbage]:
    if request.dry_run:
        return items
    return [remove(item) if item.action == "drop" else item for item in items]


MEMORY = _MemoryType()
FILES = _FilesType()
