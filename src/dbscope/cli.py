"""The ``dbscope`` command: report, baseline, gc, doctor, init.

    dbscope report FILE.json [--html OUT]          show a saved report (exit 1 if it has failures or leaks)
    dbscope baseline save RUN.json BASE.json        keep a run's figures as the baseline
    dbscope baseline check RUN.json BASE.json       compare a run with a baseline (exit 1 on failure)
    dbscope gc [--url URL] [--kept] [--yes]         list (or with --yes, drop) what runs left behind
    dbscope doctor [--url URL] [--migrations SPEC]  check settings, backend, template and clone speed
    dbscope init [--yes] [--metadata MODULE:ATTR]   write the settings into the project's pytest config (init.py)

Settings not given on the command line come from the environment (``DBSCOPE_*``) and
from the pytest configuration file found from the current directory upwards, as pytest
9 finds it: pytest.toml, .pytest.toml (table ``[pytest]``), pytest.ini, .pytest.ini,
pyproject.toml (``[tool.pytest]`` with TOML types, or ``[tool.pytest.ini_options]``),
tox.ini, setup.cfg; with the same precedence as under pytest.

What differs between backends is asked of the URL's backend type (backends/registry.py):
this module never imports a driver nor branches on which backend a URL chose.

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
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .backends import registry
from .backends.base import Backend, Garbage, GarbageRequest
from .baseline import compare, comparison_lines, context_notes, has_failures, load_baseline, save_baseline
from .config import SETTINGS, Config, build_config
from .django_templates import template_garbage
from .errors import ConfigError, DbscopeError, ReportError, UsageError
from .report import leaking_tests, load_report, summary_lines, write_text
from .urls import mask_password

__all__ = ["UsageError", "main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


# -- settings as pytest would read them --------------------------------------------------

#: pytest's configuration files, in its order of precedence (pytest 9, _pytest/config/findpaths.py)
CONFIG_FILES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def find_ini(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The pytest configuration file for ``start`` and its settings, found as pytest finds it.

    From ``start`` upwards, in each directory the first of :data:`CONFIG_FILES` that holds
    pytest settings wins (pytest.toml and pytest.ini count even without any); with none
    anywhere, the nearest pyproject.toml is the configuration file, with no settings.
    """
    pyproject = None
    for directory in (start, *start.parents):
        for name in CONFIG_FILES:
            path = directory / name
            if not path.is_file():
                continue
            if name == "pyproject.toml" and pyproject is None:
                pyproject = path
            values = _read_config(path)
            if values is not None:
                return path, values
    return pyproject, {}


def _read_config(path: Path) -> dict[str, Any] | None:
    """The pytest settings in ``path``, or None when it holds none (and so is not the config file)."""
    try:
        if path.suffix == ".toml":
            return _read_toml(path, tomllib.loads(path.read_text(encoding="utf-8")))
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(str(path), encoding="utf-8")
    except (OSError, ValueError, configparser.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(section):
        return dict(parser.items(section))
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def _read_toml(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    """pytest.toml's ``[pytest]`` table; pyproject.toml's ``[tool.pytest]`` or ``[tool.pytest.ini_options]``."""
    if path.name != "pyproject.toml":
        table = document.get("pytest")
        if isinstance(table, dict):
            return dict(table)
        outside = [key for key, value in document.items() if not isinstance(value, dict)]
        if outside:
            raise UsageError(
                f"{path}: pytest configuration must be under a [pytest] table "
                f"(found top-level options: {', '.join(outside)})"
            )
        return {}
    tool = document.get("tool", {}).get("pytest", {})
    native = {key: value for key, value in tool.items() if key != "ini_options"}
    ini_options = tool.get("ini_options")
    if native and ini_options:
        raise UsageError(
            f"{path}: cannot use both [tool.pytest] (native TOML types) and [tool.pytest.ini_options] (strings); "
            "pytest refuses it too"
        )
    if native:
        return native
    return dict(ini_options) if isinstance(ini_options, dict) else None


def load_settings(overrides: dict[str, Any], *, cwd: Path | None = None) -> tuple[Config, str]:
    """Config from the command line > DBSCOPE_* environment > the project's pytest config file.

    The config file's ``pythonpath`` entries go on ``sys.path`` first, as pytest puts them,
    so that ``module:attr`` migrations import here as they do under pytest.
    """
    where = (cwd or Path.cwd()).absolute()
    path, raw = find_ini(where)
    if path is not None:
        entries = raw.get("pythonpath") or []
        for entry in reversed(entries.split() if isinstance(entries, str) else list(entries)):
            directory = str((path.parent / str(entry)).absolute())
            if directory not in sys.path:
                sys.path.insert(0, directory)
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
    return _report_verdict(report, out)


def _report_verdict(report: dict[str, Any], out: Out) -> int:
    """The last line: what went wrong in the run (exit 1), or that nothing did."""
    failures = int(report["summary"].get("failures", 0))
    leaking = len(leaking_tests(report))
    problems = [f"{failures} failed test(s)"] if failures else []
    problems += [f"{leaking} test(s) that leaked a connection or scope"] if leaking else []
    if problems:
        out.line(f"problems found: {', '.join(problems)}", "red")
        return EXIT_PROBLEMS
    out.line("no failed tests and no leaks", "green")
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


def cmd_gc(args: argparse.Namespace, out: Out) -> int:
    config, _ = load_settings({"url": args.url})
    url = config.backend_url
    request = GarbageRequest(
        dry_run=not args.yes,
        templates=args.templates,
        kept=args.kept,
        stale_after_s=args.older_than,
        allow_remote=args.allow_remote,
    )
    found = url.backend_type().garbage(url, config=config, request=request)
    # dbscope.django's templates on a PostgreSQL or MariaDB/MySQL server (none on any other URL)
    try:
        django = template_garbage(
            url, dry_run=request.dry_run, templates=request.templates, allow_remote=request.allow_remote
        )
    except DbscopeError as exc:  # what the backend's own collection did still stands
        print(
            f"dbscope gc: could not look for dbscope.django's templates on {url.masked}: {mask_password(str(exc))}",
            file=sys.stderr,
        )
        django = []
    if found.nothing_because is not None and not django:
        out.line(f"{url.masked}: nothing to collect: {found.nothing_because}")
        return EXIT_OK
    return _print_garbage([*found.items, *django], url.masked, request.dry_run, out)


def _print_garbage(items: Sequence[Garbage], where: str, dry_run: bool, out: Out) -> int:
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
    """Runs checks in order, each printed as ok / PROBLEM / n/a, and collects advice (a Checkup)."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.problems = 0
        self.advice: list[str] = []
        #: what the backend's driver raises: a check that raises it found a problem
        self.driver_errors: tuple[type[BaseException], ...] = ()

    def ok(self, what: str, detail: str) -> None:
        self.out.line(f"  ok       {what}: {detail}", "green")

    def na(self, what: str, detail: str) -> None:
        self.out.line(f"  n/a      {what}: {detail}")

    def problem(self, what: str, detail: str) -> None:
        self.problems += 1
        self.out.line(f"  PROBLEM  {what}: {detail}", "red")

    def advise(self, advice: str) -> None:
        self.advice.append(advice)

    def step(self, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action``; a DbscopeError, OSError or driver error is this check's problem, None is returned."""
        caught: tuple[type[BaseException], ...] = (DbscopeError, OSError, *self.driver_errors)
        try:
            return action()
        except caught as exc:
            self.problem(what, mask_password(str(exc)))
            return None


def cmd_doctor(args: argparse.Namespace, out: Out) -> int:
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
        doctor.advise("dbscope_migrations is not set: every test gets an empty database")
    url = config.backend_url.resolved(config.base_dir)
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

    kind = doctor.step("backend", url.backend_type)
    if kind is None:
        return _doctor_end(doctor)
    doctor.driver_errors = kind.driver_errors
    backend: Backend | None = doctor.step(
        "backend", lambda: kind.open(url, run_id=f"doctor{secrets.token_hex(2)}", config=config)
    )
    if backend is None:
        return _doctor_end(doctor)
    try:
        doctor.ok("backend", f"{url.entry.title} ({url.masked}) answers")
        cache_report = doctor.step(
            "cached template", lambda: kind.inspect_cache(backend, fingerprint=fingerprint, checkup=doctor)
        )
        started = time.perf_counter()
        template = doctor.step("template", lambda: backend.template(migrations, seed, rebuild=True))
        if template is None:
            return _doctor_end(doctor)
        doctor.ok("template", f"built from scratch in {(time.perf_counter() - started) * 1000:.1f} ms")
        if cache_report is not None:
            doctor.step("cached template", cache_report)
        clones = doctor.step("clones", lambda: _time_clones(backend, template, args.clones))
        if clones is not None:
            create, drop = clones
            doctor.ok(
                "clones",
                f"{args.clones} clones: median {create[0]:.2f} ms (p95 {create[1]:.2f} ms), "
                f"drop median {drop[0]:.2f} ms",
            )
            doctor.step("advice", lambda: kind.advise(url, backend, config=config, clone_ms=create[0], checkup=doctor))
    finally:
        try:
            backend.close()
        except Exception as exc:  # noqa: BLE001 - any backend's close: worth a line, not a traceback
            doctor.problem("backend close", str(exc))
    return _doctor_end(doctor)


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
        epilog=f"database URLs (--url, dbscope_url): {registry.usage()}. "
        "Exit status: 0 all is well, 1 problems found, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"dbscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser(
        "report",
        help="show a saved JSON report; render it as HTML",
        description="Print the summary of a report written by pytest --dbscope-report=PATH; "
        "exit 1 when it records failed tests or leaks.",
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

    url_help = f"the database URL: {registry.usage()} (default: dbscope_url from the environment or pytest config)"
    gc = commands.add_parser(
        "gc",
        help="list (or drop, with --yes) the databases crashed runs left behind",
        description="List what dbscope would drop, and why; nothing is dropped without --yes. On a PostgreSQL "
        "or MariaDB/MySQL server this includes dbscope.django's templates (test_dbscope_tpl_*): those superseded "
        "by a newer template of the same alias and database are dropped, the newest only with --templates, and "
        "none that a live run uses.",
    )
    gc.add_argument("--url", help=url_help)
    mode = gc.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true", help="really drop what is listed as 'would drop'")
    mode.add_argument("--dry-run", action="store_true", help="only list (the default)")
    gc.add_argument("--templates", action="store_true", help="drop cached templates too")
    gc.add_argument(
        "--kept",
        action="store_true",
        help="drop the databases --dbscope-keep-failed kept too (SQLite: the files in .dbscope/failed/)",
    )
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
    doctor.add_argument("--url", help=url_help)
    doctor.add_argument("--migrations", metavar="SPEC", help="migrations (default: dbscope_migrations)")
    doctor.add_argument("--seed", metavar="SPEC", help="seed (default: dbscope_seed)")
    doctor.add_argument("--clones", type=_count, default=20, metavar="N", help="clones to time (default 20)")
    doctor.set_defaults(func=cmd_doctor)

    from .init import add_parser as add_init_parser  # here, not at the top: init imports this module

    add_init_parser(commands)
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
