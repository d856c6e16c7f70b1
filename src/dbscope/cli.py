"""The ``dbscope`` command: report, baseline, gc, doctor.

    dbscope report FILE.json [--html OUT]          show a saved report, render it as HTML
    dbscope baseline save RUN.json BASE.json        keep a run's figures as the baseline
    dbscope baseline check RUN.json BASE.json       compare a run with a baseline (exit 1 on failure)
    dbscope gc [--url URL] [--yes]                  list (or with --yes, drop) what crashed runs left
    dbscope doctor [--url URL] [--migrations SPEC]  check settings, backend, template and clone speed

Settings not given on the command line come from the environment (``DBSCOPE_*``) and
from the pytest configuration file found from the current directory upwards
(pytest.ini, .pytest.ini, pyproject.toml's [tool.pytest.ini_options], tox.ini,
setup.cfg), with the same precedence as under pytest.

Exit status: 0 all is well, 1 problems found (or a regression, or a failed
operation), 2 a usage error (bad arguments, an unreadable input file). Errors are
one line, without a traceback. No pytest here.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import math
import os
import secrets
import sqlite3
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .baseline import compare, comparison_lines, context_notes, has_failures, load_baseline, save_baseline
from .config import SETTINGS, Config, build_config
from .errors import ConfigError, DbscopeError
from .report import ReportError, load_report, summary_lines, write_text
from .urls import mask_password, parse_backend_url

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
SQLITE_STALE_AFTER_S = 3600.0


class UsageError(DbscopeError):
    """The command line, or a file named on it, cannot be used."""


# -- settings as pytest would read them --------------------------------------------------


def find_ini(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The pytest configuration file for ``start`` and its dbscope_* values, as pytest finds it."""
    for directory in (start, *start.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            path = directory / name
            if not path.is_file():
                continue
            values = _read_ini(path)
            if values is not None:
                return path, values
    return None, {}


def _read_ini(path: Path) -> dict[str, Any] | None:
    """The ini section's values, or None when the file has no pytest section."""
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            section = data.get("tool", {}).get("pytest", {}).get("ini_options")
            return dict(section) if isinstance(section, dict) else None
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
    except (OSError, ValueError, configparser.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    name = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if not parser.has_section(name):
        return None if path.name != "pytest.ini" else {}
    return dict(parser.items(name))


def load_settings(overrides: dict[str, Any], *, cwd: Path | None = None) -> tuple[Config, str]:
    """Config from the command line > DBSCOPE_* environment > the project's pytest config file."""
    where = (cwd or Path.cwd()).absolute()
    path, raw = find_ini(where)
    ini = {s.name: raw.get(s.ini_name) for s in SETTINGS if s.ini and raw.get(s.ini_name) is not None}
    source = f"config file {path.name}" if path else "config file"
    try:
        config = build_config(
            cli={k: v for k, v in overrides.items() if v is not None},
            env=os.environ,
            ini=ini,
            ini_source=source,
            base_dir=str(path.parent if path else where),
        )
    except ConfigError as exc:  # name this command's options, not pytest's
        raise ConfigError(_own_options(str(exc))) from None
    origins = {name: _own_options(origin) for name, origin in config.origins.items()}
    return replace(config, origins=origins), (str(path) if path else "no pytest config file")


def _own_options(text: str) -> str:
    """``--dbscope-url on the command line`` -> ``--url on the command line``: this command's names."""
    for setting in SETTINGS:
        text = text.replace(f"{setting.option} on the command line", f"--{setting.name} on the command line")
    return text


# -- output ------------------------------------------------------------------------------


_ANSI = {"red": "31", "yellow": "33", "green": "32", "bold": "1"}


class Out:
    """Lines to stdout, coloured when it is a terminal (and NO_COLOR is not set)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.colour = hasattr(self.stream, "isatty") and self.stream.isatty() and "NO_COLOR" not in os.environ

    def line(self, text: str = "", colour: str | None = None) -> None:
        if colour and self.colour:
            text = f"\x1b[{_ANSI[colour]}m{text}\x1b[0m"
        print(text, file=self.stream)


# -- report ------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace, out: Out) -> int:
    report = load_report(args.file)
    out.line(f"dbscope isolation report: {args.file} ({report.get('created_at', 'undated')})", "bold")
    for text, colour in summary_lines(report, max_warnings=None if args.verbose else 25):
        out.line(text, colour)
    if report.get("baseline"):
        out.line(f"compared with the baseline {report['baseline'].get('path')}:")
        for row in report["baseline"]["comparison"]:
            out.line(f"  {row['label']}: {row['status']}", {"failure": "red", "warning": "yellow"}.get(row["status"]))
    if args.html:
        from .html_report import render

        with _writing(args.html, "the HTML report"):
            path = write_text(args.html, render(report))
        out.line(f"HTML report written to {path}")
    return EXIT_OK


# -- baseline ----------------------------------------------------------------------------


def cmd_baseline_save(args: argparse.Namespace, out: Out) -> int:
    report = _report_or_baseline(args.run)
    with _writing(args.baseline, "the baseline"):
        path = save_baseline(args.baseline, report)
    out.line(f"baseline written to {path}")
    return EXIT_OK


def cmd_baseline_check(args: argparse.Namespace, out: Out) -> int:
    current = _report_or_baseline(args.run)
    baseline = load_baseline(args.baseline)
    rows = compare(baseline, current)
    for text, colour in comparison_lines(rows, source=args.baseline, notes=context_notes(baseline, current)):
        out.line(text, colour)
    return EXIT_PROBLEMS if has_failures(rows) else EXIT_OK


@contextlib.contextmanager
def _writing(path: str, what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise DbscopeError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None


def _report_or_baseline(path: str) -> dict[str, Any]:
    try:
        return load_report(path)
    except ReportError:
        return load_baseline(path)  # a baseline file works too; its error names both kinds


# -- gc ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileGarbage:
    """A file or directory dbscope left, and what gc does with it: the shape of postgresql's GarbageItem."""

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

    Names are ``dbscope_<run>_<worker>_<n>.sqlite3`` (a scope's database, with its
    -journal/-wal/-shm companions), ``dbscope_tpl_<fingerprint>.sqlite3`` (a cached
    template, kept unless ``templates``) and ``dbscope_tpl_*.building`` (a template
    build that never finished). A file counts as stale when unchanged for
    ``stale_after_s``: a running suite touches its files all the time.
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
        if not name.startswith("dbscope_") or not path.is_file():
            continue
        age = now - path.stat().st_mtime
        stale = age >= stale_after_s
        if name.startswith("dbscope_tpl_") and name.endswith(".sqlite3"):
            if templates:
                items.append(FileGarbage(name, "cached template; the next run builds it again", "drop", path))
            else:
                items.append(FileGarbage(name, "cached template (give --templates to drop it)", "keep", path))
        elif name.startswith("dbscope_tpl_") and name.endswith(".building"):
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


def temp_dir_garbage(bases: Sequence[Path], *, stale_after_s: float, now: float | None = None) -> list[FileGarbage]:
    """``dbscope_*`` directories that ``sqlite+file://`` runs made in /dev/shm or the temp dir and left behind."""
    now = time.time() if now is None else now
    items = []
    for base in bases:
        try:
            entries = sorted(base.iterdir())
        except OSError:
            continue
        for path in entries:
            if not path.name.startswith("dbscope_") or not path.is_dir():
                continue
            try:
                newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
            except OSError:
                continue
            age = now - newest
            if age >= stale_after_s:
                items.append(
                    FileGarbage(
                        str(path), f"a run's private database directory, unchanged for {_age(age)}", "drop", path
                    )
                )
            else:
                items.append(
                    FileGarbage(str(path), f"changed {_age(age)} ago: it may belong to a running suite", "keep", path)
                )
    return items


def _remove(item: FileGarbage) -> FileGarbage:
    assert item.path is not None
    try:
        if item.path.is_dir():
            for child in item.path.iterdir():
                if child.name.startswith("dbscope_"):
                    child.unlink(missing_ok=True)
            item.path.rmdir()
        else:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{item.path}{suffix}").unlink(missing_ok=True)
    except OSError as exc:
        return FileGarbage(item.name, f"{item.reason}; removing it failed: {exc.strerror}", "keep", item.path)
    return item


def cmd_gc(args: argparse.Namespace, out: Out) -> int:
    config, _ = load_settings({"url": args.url})
    url = parse_backend_url(config.url)
    dry_run = not args.yes
    if url.family == "sqlite" and url.kind == "memory":
        out.line(f"{url.masked}: nothing to collect: in-memory databases vanish with the process that made them")
        return EXIT_OK
    if url.family == "sqlite":
        stale = args.older_than if args.older_than is not None else SQLITE_STALE_AFTER_S
        if url.path is None:
            bases = [Path("/dev/shm"), Path(os.environ.get("TMPDIR", "/tmp"))]
            items = temp_dir_garbage([b for b in bases if b.is_dir()], stale_after_s=stale)
        else:
            directory = Path(url.path)
            if not directory.is_absolute() and config.base_dir:
                directory = Path(config.base_dir) / directory
            items = sqlite_garbage(directory, stale_after_s=stale, templates=args.templates)
        if not dry_run:
            items = [_remove(i) if i.action == "drop" else i for i in items]
        return _print_garbage(items, url.masked, dry_run, out)
    if url.family == "postgresql" and url.kind == "server":
        try:
            from .backends.postgresql import collect_garbage
        except ImportError as exc:
            raise DbscopeError(
                f"dbscope gc needs the PostgreSQL backend and psycopg ({exc}); pip install 'dbscope[postgres]'"
            ) from None
        options: dict[str, Any] = {"dry_run": dry_run, "allow_remote": args.allow_remote or config.allow_remote}
        if args.older_than is not None:
            options["stale_after_s"] = args.older_than
        if args.templates:
            options["templates"] = True
        return _print_garbage(collect_garbage(config.url, **options), url.masked, dry_run, out)
    out.line(f"{url.masked}: nothing to collect: a throwaway cluster (postgresql+proc://) is removed with its run")
    return EXIT_OK


def _print_garbage(items: Sequence[Any], where: str, dry_run: bool, out: Out) -> int:
    doomed = [i for i in items if i.action == "drop"]
    if not items:
        out.line(f"{where}: nothing dbscope made is left")
        return EXIT_OK
    for item in items:
        if item.action == "drop":
            out.line(
                f"{'would drop' if dry_run else 'dropped'} {item.name}: {item.reason}", "yellow" if dry_run else None
            )
        else:
            out.line(f"keep {item.name}: {item.reason}")
    if dry_run and doomed:
        out.line(f"{len(doomed)} item(s) would be dropped; nothing was dropped: run again with --yes to drop them")
    elif dry_run:
        out.line("nothing to drop")
    else:
        out.line(f"dropped {len(doomed)} item(s)")
    return EXIT_OK


# -- doctor ------------------------------------------------------------------------------


class Doctor:
    """Runs checks in order, each printed as ok / PROBLEM / n/a, and collects advice."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.problems = 0
        self.advice: list[str] = []

    def ok(self, what: str, detail: str) -> None:
        self.out.line(f"  ok       {what}: {detail}", "green")

    def na(self, what: str, detail: str) -> None:
        self.out.line(f"  n/a      {what}: {detail}")

    def problem(self, what: str, detail: str) -> None:
        self.problems += 1
        self.out.line(f"  PROBLEM  {what}: {detail}", "red")

    def step(self, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action``; a DbscopeError (or an OSError) is this check's problem, None is returned."""
        try:
            return action()
        except (DbscopeError, OSError, sqlite3.Error) as exc:
            self.problem(what, mask_password(str(exc)))
            return None


def _filesystem(path: str) -> str | None:
    """The type of the file system holding ``path``, from /proc/mounts (None when unknown)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, parts[2]
    return kind


def _sqlite_digest(path: Path) -> str:
    import hashlib

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        for line in conn.iterdump():
            digest.update(line.encode())
        return digest.hexdigest()[:16]
    finally:
        conn.close()


def _pg_data_directory(url: str) -> str | None:
    """The server's data directory when it can be asked (superuser or pg_read_all_settings)."""
    try:
        import psycopg
    except ImportError:
        return None
    raw = "postgresql://" + url.split("://", 1)[1]
    try:
        with psycopg.connect(raw, connect_timeout=3) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except (psycopg.Error, OSError):
        return None
    return str(row[0]) if row else None


def cmd_doctor(args: argparse.Namespace, out: Out) -> int:
    from .backends import open_backend
    from .migrations import combined_fingerprint, load_migrations

    doctor = Doctor(out)
    out.line(f"dbscope {__version__} doctor, in {Path.cwd()}", "bold")
    try:
        config, source = load_settings({"url": args.url, "migrations": args.migrations, "seed": args.seed})
    except (ConfigError, UsageError) as exc:
        doctor.problem("settings", str(exc))
        return _doctor_end(doctor)
    doctor.ok(
        "settings",
        f"url {mask_password(config.url)}, migrations {config.migrations or '(none)'}, seed {config.seed or '(none)'}, "
        f"strategy {config.strategy} (from {source} and the DBSCOPE_* environment)",
    )
    if not config.migrations:
        doctor.advice.append("dbscope_migrations is not set: every test gets an empty database")
    url = parse_backend_url(config.url)
    migrations = doctor.step(
        "migrations",
        lambda: load_migrations(
            config.migrations,
            setting="dbscope_migrations",
            base_dir=config.base_dir,
            origin=config.origin("migrations"),
        ),
    )
    seed = doctor.step(
        "seed",
        lambda: load_migrations(
            config.seed, setting="dbscope_seed", base_dir=config.base_dir, origin=config.origin("seed")
        ),
    )
    if migrations is None or seed is None:
        return _doctor_end(doctor)
    fingerprint = combined_fingerprint(migrations, seed)
    doctor.ok(
        "migrations", f"{len(migrations.steps)} step(s), seed {len(seed.steps)} step(s), fingerprint {fingerprint}"
    )

    backend = doctor.step("backend", lambda: open_backend(url, run_id=f"doctor{secrets.token_hex(2)}", config=config))
    if backend is None:
        return _doctor_end(doctor)
    try:
        kind = {
            "memory": "SQLite in memory",
            "file": "SQLite files",
            "server": "PostgreSQL server",
            "proc": "a throwaway PostgreSQL cluster",
        }[url.kind]
        doctor.ok("backend", f"{kind} ({url.masked}) answers")
        cached_path = cached_digest = None
        directory = getattr(backend, "directory", None)
        if url.family == "sqlite" and url.kind == "file" and directory is not None:
            cached_path = Path(directory) / f"dbscope_tpl_{fingerprint}.sqlite3"
            if cached_path.exists():
                cached_digest = doctor.step("cached template", lambda: _sqlite_digest(cached_path))
        started = time.perf_counter()
        template = doctor.step("template", lambda: backend.template(migrations, seed, rebuild=True))
        if template is None:
            return _doctor_end(doctor)
        doctor.ok("template", f"built from scratch in {(time.perf_counter() - started) * 1000:.1f} ms")
        _check_cache(doctor, url.kind, cached_path, cached_digest, directory, fingerprint)
        clones = doctor.step("clones", lambda: _time_clones(backend, template, args.clones))
        if clones is not None:
            create, drop = clones
            doctor.ok(
                "clones",
                f"{args.clones} clones: median {create[0]:.2f} ms (p95 {create[1]:.2f} ms), "
                f"drop median {drop[0]:.2f} ms",
            )
            _advise_speed(doctor, url, config, directory, create[0])
    finally:
        try:
            backend.close()
        except Exception as exc:  # noqa: BLE001 - any backend's close: worth a line, not a traceback
            doctor.problem("backend close", str(exc))
    return _doctor_end(doctor)


def _check_cache(
    doctor: Doctor, kind: str, cached_path: Path | None, cached_digest: str | None, directory: Any, fingerprint: str
) -> None:
    if kind == "memory":
        doctor.na("cached template", "in memory the template is built once per process; nothing is cached between runs")
        return
    if cached_path is None:
        doctor.na("cached template", f"the server keeps the template under fingerprint {fingerprint}; rebuilt above")
        return
    others = sorted(p.name for p in Path(directory).glob("dbscope_tpl_*.sqlite3") if p.name != cached_path.name)
    if others:
        doctor.advice.append(
            f"{len(others)} cached template(s) of older migrations in {directory}: "
            "`dbscope gc --templates --yes` removes them"
        )
    if cached_digest is None:
        doctor.na("cached template", "none was cached for these migrations; one is now")
        return
    fresh = _sqlite_digest(cached_path)
    if fresh == cached_digest:
        doctor.ok("cached template", "identical to a fresh build")
    else:
        doctor.problem(
            "cached template",
            f"it differed from a fresh build of the same migrations ({cached_digest} vs {fresh}) and has been "
            "replaced: a migration or seed step is not deterministic (time, random values) or the file was edited",
        )


def _time_clones(backend: Any, template: Any, count: int) -> tuple[tuple[float, float], tuple[float, float]]:
    creates, drops = [], []
    for i in range(count):
        started = time.perf_counter()
        database = backend.create(template, label=f"doctor_{i}")
        creates.append((time.perf_counter() - started) * 1000)
        try:
            conn = database.connect()
            try:
                conn.execute("SELECT 1")
            finally:
                conn.close()
        finally:
            database.release()
            started = time.perf_counter()
            database.drop()
            drops.append((time.perf_counter() - started) * 1000)

    def stats(values: list[float]) -> tuple[float, float]:
        ordered = sorted(values)
        return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]

    return stats(creates), stats(drops)


def _advise_speed(doctor: Doctor, url: Any, config: Config, directory: Any, median_ms: float) -> None:
    if url.family == "sqlite":
        if url.kind == "file" and directory is not None:
            fs = _filesystem(str(directory))
            if fs and fs not in ("tmpfs", "ramfs"):
                doctor.advice.append(
                    f"the database files are on {fs} ({directory}): put them on tmpfs (sqlite:////dev/shm/dbscope) "
                    "or use sqlite:// unless an app in another process must open them"
                )
        if median_ms > 5:
            doctor.advice.append(
                f"a SQLite clone takes {median_ms:.1f} ms (about 0.3 ms is usual for a 30-table schema): "
                "keep the seed data small; load big fixtures in the tests that need them"
            )
        return
    if url.kind == "server":
        data_directory = _pg_data_directory(config.url)
        fs = _filesystem(data_directory) if data_directory else None
        if fs and fs not in ("tmpfs", "ramfs"):
            doctor.advice.append(
                f"the server's data directory ({data_directory}) is on {fs}: on ext4, PostgreSQL clones degrade "
                "under sustained create/drop (MEASUREMENTS.md: 54 ms at first, 400+ ms after a few hundred); "
                "use postgresql+proc:// (a throwaway cluster on tmpfs) or move the test server's data to tmpfs"
            )
        elif median_ms > 50:
            doctor.advice.append(
                f"a PostgreSQL clone takes {median_ms:.0f} ms: if the server's data is on ext4, clones degrade "
                "under sustained use (see MEASUREMENTS.md); use postgresql+proc:// (a cluster on tmpfs, fsync off)"
            )


def _doctor_end(doctor: Doctor) -> int:
    if doctor.advice:
        doctor.out.line("advice:")
        for advice in doctor.advice:
            doctor.out.line(f"  - {advice}", "yellow")
    if doctor.problems:
        doctor.out.line(f"{doctor.problems} problem(s) found", "red")
        return EXIT_PROBLEMS
    doctor.out.line("no problems found", "green")
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbscope",
        description="dbscope: a fresh, migrated, isolated database for every test. Reports, baselines, "
        "garbage collection and a health check.",
        epilog="exit status: 0 all is well, 1 problems found, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"dbscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser(
        "report",
        help="show a saved JSON report; render it as HTML",
        description="Print the summary of a report written by pytest --dbscope-report=PATH.",
    )
    report.add_argument("file", metavar="FILE.json")
    report.add_argument("--html", metavar="OUT", help="also write the report as a self-contained HTML page")
    report.add_argument(
        "-v", "--verbose", action="store_true", help="list every warning, not the first 25 of each kind"
    )
    report.set_defaults(func=cmd_report)

    baseline = commands.add_parser(
        "baseline",
        help="save or check a performance baseline",
        description="Baselines: warning at 1.2x the average duration or 1.3x the "
        "average memory growth, failure at 1.5x the slowest test.",
    )
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    save = actions.add_parser("save", help="write RUN.json's figures to BASE.json")
    check = actions.add_parser("check", help="compare RUN.json with BASE.json; exit 1 on a failure")
    for sub, func in ((save, cmd_baseline_save), (check, cmd_baseline_check)):
        sub.add_argument("run", metavar="RUN.json", help="a report written by pytest --dbscope-report")
        sub.add_argument("baseline", metavar="BASE.json")
        sub.set_defaults(func=func)

    gc = commands.add_parser(
        "gc",
        help="list (or drop, with --yes) the databases crashed runs left behind",
        description="List what dbscope would drop, and why; nothing is dropped without --yes.",
    )
    gc.add_argument("--url", help="the database URL (default: dbscope_url from the environment or pytest config)")
    mode = gc.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true", help="really drop what is listed as 'would drop'")
    mode.add_argument("--dry-run", action="store_true", help="only list (the default)")
    gc.add_argument("--templates", action="store_true", help="drop cached templates too")
    gc.add_argument(
        "--older-than",
        type=_seconds,
        metavar="SECONDS",
        help="what counts as stale (SQLite files: 3600 s; PostgreSQL: the backend's default)",
    )
    gc.add_argument("--allow-remote", action="store_true", help="allow a database server that is not on this machine")
    gc.set_defaults(func=cmd_gc)

    doctor = commands.add_parser(
        "doctor",
        help="check settings, backend, template and clone speed; give advice",
        description="Check the settings, reach the backend, build the template from scratch, compare it with the "
        "cached one, time clones, and advise.",
    )
    doctor.add_argument("--url", help="database URL (default: from the environment or pytest config)")
    doctor.add_argument("--migrations", metavar="SPEC", help="migrations (default: dbscope_migrations)")
    doctor.add_argument("--seed", metavar="SPEC", help="seed (default: dbscope_seed)")
    doctor.add_argument("--clones", type=_count, default=20, metavar="N", help="clones to time (default 20)")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if math.isnan(value) or math.isinf(value):  # NaN compares false with everything: nothing would be stale
        raise argparse.ArgumentTypeError(f"{raw!r} is not a finite number of seconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 1 and 10000")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dbscope`` command; return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    out = Out()
    name = " ".join(p for p in ("dbscope", args.command, getattr(args, "action", None)) if p)
    try:
        return int(args.func(args, out))
    except (UsageError, ReportError, ConfigError) as exc:
        print(f"{name}: error: {mask_password(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except DbscopeError as exc:
        print(f"{name}: {mask_password(str(exc))}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
