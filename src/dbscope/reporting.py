"""The report's pytest side: a record per test, one combined report under xdist.

Registered by plugin.py as its own plugin object, so the plugin stays thin. What a
record holds and how the summary is computed is report.py's (no pytest there); this
module only feeds it:

* ``pytest_runtest_protocol`` (a wrapper) opens a record when a test starts and
  closes it after its teardown: memory, scope leaks, warnings;
* ``pytest_runtest_logreport`` adds pytest's own phase durations and the outcome;
* the manager's scope listener adds each ended scope's setup and teardown time,
  connections and leaks to the record of the test that is running; dbscope.django
  hands in its test databases' isolation of a Django test the same way
  (:meth:`ReportPlugin.isolation_ended`, anything shaped as :class:`Isolation`);
* :meth:`ReportPlugin.add_section` adds rows of figures of a named section of the
  report (dbscope.django's templates: ``report["django"]``).

Under pytest-xdist each worker records its own tests (and sections) and sends them
to the controller in ``config.workeroutput``; the controller writes the files and
prints one report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from . import __version__
from .baseline import Comparison, compare, comparison_lines, context_notes, has_failures, load_baseline, save_baseline
from .errors import DbscopeError
from .manager import IsolationManager
from .report import (
    MemoryProbe,
    Record,
    build_report,
    leaking_tests,
    merge_metrics,
    summary_lines,
    write_json,
    write_text,
)
from .urls import mask_password

__all__ = ["Isolation", "ReportPlugin"]

_NO_IDS: tuple[str, ...] = ()


class Isolation(Protocol):
    """What the report reads of one test's ended isolation: a dbscope :class:`~dbscope.scope.Scope`, or the
    test databases dbscope.django restored or rolled back for one Django test."""

    id: str
    setup_ms: float
    teardown_ms: float
    leaked_connections: int
    connections_opened: int
    connections_closed: int
    cleanup_errors: list[str]
    isolation_errors: list[str]
    kept_url: str | None
    kept_note: str | None


class ReportPlugin:
    """Records what each test cost and left behind, and prints the isolation report."""

    def __init__(self, config: pytest.Config, manager: IsolationManager) -> None:
        self.config = config
        self.manager = manager
        self.settings = manager.config
        self.is_worker = hasattr(config, "workerinput")
        self.worker = manager.worker_id
        self.memory = MemoryProbe()
        self.records: list[Record] = []
        self.current: Record | None = None
        self._start_ids = _NO_IDS
        self._setup_ids = _NO_IDS
        self._last_rss = self.memory.read()
        self.worker_parts: list[dict[str, Any]] = []
        self.missing_workers: list[str] = []
        self.report: dict[str, Any] | None = None
        self.comparison: list[Comparison] | None = None
        self.written: list[str] = []
        self.problems: list[str] = []
        self.leak_failures: list[tuple[str, str]] = []
        #: named sections of the report beyond its tests (``add_section``): this process's rows
        self.sections: dict[str, list[dict[str, Any]]] = {}
        base = config.invocation_params.dir
        s = self.settings
        self.paths = {
            name: (base / value if value else None)
            for name, value in (
                ("report", s.report),
                ("html", s.html),
                ("baseline", s.baseline),
                ("save_baseline", s.save_baseline),
            )
        }
        self.baseline: dict[str, Any] | None = None
        if not self.is_worker and self.paths["baseline"] is not None:
            try:
                self.baseline = load_baseline(self.paths["baseline"])
            except DbscopeError as exc:
                raise pytest.UsageError(f"dbscope: --dbscope-baseline: {exc}") from None
        manager.scope_listeners.append(self.isolation_ended)

    # -- recording (in the process that runs the tests) --------------------------------

    def isolation_ended(self, scope: Isolation) -> None:
        """A scope (or another isolation of the running test, see :class:`Isolation`) ended: into its record."""
        record = self.current
        if record is None:  # a scope that ended outside any test (session start or end)
            return
        record.scope_ended(scope.id, scope.setup_ms, scope.teardown_ms, scope.leaked_connections)
        record.connections_opened += scope.connections_opened
        record.connections_closed += scope.connections_closed
        for problem in scope.cleanup_errors:  # a close that hung or failed: the test still ran, say so
            record.warn("cleanup_failure", f"cleanup failure in {record.nodeid}: {mask_password(problem)}")
        for problem in scope.isolation_errors:  # the test also fails (its teardown): the report says why
            record.warn("isolation_error", f"isolation error in {record.nodeid}: {mask_password(problem)}")
        if scope.kept_url or scope.kept_note:
            record.kept_database = mask_password(scope.kept_url or scope.kept_note or "")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        self._last_rss = self.memory.read()  # collection's imports are no test's growth

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        active = self.manager.active_scopes
        self._start_ids = tuple(active) if active else _NO_IDS
        self._setup_ids = _NO_IDS
        self.current = Record(item.nodeid, self.worker, time.time())
        try:
            return (yield)
        finally:
            self._finish()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.current
        if record is None or report.nodeid != record.nodeid:
            return  # the xdist controller: its workers keep the records
        record.duration_ms += report.duration * 1000
        when = report.when
        if when == "call":
            record.call_ms = report.duration * 1000
            if hasattr(report, "wasxfail"):
                record.outcome = "xfailed" if report.skipped else "xpassed"
            elif report.failed:
                record.outcome = "failed"
            elif report.skipped:
                record.outcome = "skipped"
        elif when == "setup":
            active = self.manager.active_scopes
            self._setup_ids = tuple(active) if active else _NO_IDS
            if report.failed:
                record.outcome = "error"
            elif report.skipped:
                record.outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        elif report.failed and record.outcome == "passed":
            record.outcome = "error"

    def _finish(self) -> None:
        record = self.current
        if record is None:
            return
        try:
            if self.manager.active_scopes:
                self._clean_leaked_scopes(record)
            rss = self.memory.read()
            record.memory_growth_bytes = rss - self._last_rss
            record.rss_bytes = self._last_rss = rss
            record.check(slow_test_s=self.settings.slow_test_s, memory_growth_mb=self.settings.memory_growth_mb)
            self.records.append(record)
        finally:
            self.current = None

    def _clean_leaked_scopes(self, record: Record) -> None:
        """A scope this test created and left active after its teardown: report it, then clean it.

        Scopes alive when the test started, and scopes its setup created for another
        name (a module- or session-scoped fixture's), are not this test's to end.
        """
        for scope_id, scope in list(self.manager.active_scopes.items()):
            if scope_id in self._start_ids:
                continue
            if scope_id in self._setup_ids and scope.test_name != record.nodeid:
                continue
            record.scope_leaked = True
            record.warn(
                "scope_leak",
                f"scope leak in {record.nodeid}: scope {scope_id} (test name {scope.test_name!r}) was still "
                "active after the test's teardown; dbscope cleaned it up",
            )
            self.manager.emergency_cleanup(scope_id)  # its listener call lands in this record

    def add_section(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Rows of figures for the report's section ``name`` (``report[name]``, each row with its worker)."""
        self.sections.setdefault(name, []).extend({**row, "worker": self.worker} for row in rows)

    # -- the end of the session ------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; keep its records for the combined report."""
        output = getattr(node, "workeroutput", None) or {}
        if "dbscope" in output:
            self.worker_parts.append(output["dbscope"])
        else:
            gateway = getattr(node, "gateway", None)
            self.missing_workers.append(str(getattr(gateway, "id", node)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        tests = [record.to_dict() for record in self.records]
        if self.is_worker:
            self.config.workeroutput["dbscope"] = {  # type: ignore[attr-defined]
                "worker": self.worker,
                "metrics": self.manager.metrics,
                "memory_source": self.memory.source,
                "tests": tests,
                "sections": self.sections,
            }
            return
        sections = self.sections
        if self.worker_parts or self.missing_workers:  # the xdist controller
            parts = self.worker_parts
            tests = [test for part in parts for test in part["tests"]]
            metrics = merge_metrics(part["metrics"] for part in parts)
            workers = [part["worker"] for part in parts]
            memory_source = parts[0]["memory_source"] if parts else self.memory.source
            sections = {}
            for part in sorted(parts, key=lambda part: str(part["worker"])):  # gw0, gw1, ... whichever ended first
                for name, rows in part.get("sections", {}).items():
                    sections.setdefault(name, []).extend(rows)
        else:
            metrics, workers, memory_source = self.manager.metrics, [self.worker], self.memory.source
        s = self.settings
        report = build_report(
            tests,
            metrics,
            slow_test_s=s.slow_test_s,
            memory_growth_mb=s.memory_growth_mb,
            memory_source=memory_source,
            workers=workers,
            missing_workers=self.missing_workers,
            settings={"url": mask_password(s.url), "fail_on_leak": s.fail_on_leak},
            version=__version__,
            sections=sections,
        )
        if self.baseline is not None:
            self.comparison = compare(self.baseline, report)
            report["baseline"] = {
                "path": str(self.paths["baseline"]),
                "notes": context_notes(self.baseline, report),
                "comparison": [row.to_dict() for row in self.comparison],
            }
        self.report = report
        self._write_files(report)
        failing = bool(self.problems)
        if s.fail_on_leak:
            self.leak_failures = leaking_tests(report)
            failing = failing or bool(self.leak_failures)
        if self.comparison is not None and has_failures(self.comparison):
            failing = True
        if failing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write_files(self, report: dict[str, Any]) -> None:
        from .html_report import render

        writers: dict[str, tuple[str, str, Callable[[Path], object]]] = {
            "report": ("--dbscope-report", "JSON report", lambda p: write_json(p, report)),
            "html": ("--dbscope-html", "HTML report", lambda p: write_text(p, render(report))),
            "save_baseline": ("--dbscope-save-baseline", "baseline", lambda p: save_baseline(p, report)),
        }
        for key, (option, what, write) in writers.items():
            path: Path | None = self.paths[key]
            if path is None:
                continue
            try:
                write(path)
            except OSError as exc:
                self.problems.append(f"{option}: cannot write the {what} to {path}: {exc.strerror or exc}")
            else:
                self.written.append(f"{what} written to {path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = self.report
        if self.is_worker or report is None:
            return
        s = self.settings
        asked = any(p is not None for p in self.paths.values()) or s.fail_on_leak
        if not report["metrics"].get("scopes_created") and not report["summary"]["scoped_tests"] and not asked:
            return  # dbscope is installed but this suite does not use it: stay quiet
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "dbscope isolation report")
        limit = None if self.config.get_verbosity() > 0 else 25
        for line, colour in summary_lines(report, max_warnings=limit):
            write(line, **({colour: True} if colour else {}))
        if self.comparison is not None:
            notes = report["baseline"]["notes"]
            for line, colour in comparison_lines(self.comparison, source=str(self.paths["baseline"]), notes=notes):
                write(line, **({colour: True} if colour else {}))
        for line in self.written:
            write(line)
        for problem in self.problems:
            write(f"dbscope: {problem}", red=True)
        if self.leak_failures:
            write(
                f"dbscope: failing the run (--dbscope-fail-on-leak): {len(self.leak_failures)} test(s) leaked",
                red=True,
            )
            for nodeid, what in self.leak_failures:
                write(f"  {nodeid}: {what}", red=True)
        if self.comparison is not None and has_failures(self.comparison):
            write("dbscope: failing the run: performance regression over the baseline's failure threshold", red=True)
        kept = [(test["nodeid"], test["kept_database"]) for test in report["tests"] if test.get("kept_database")]
        if kept:  # from every worker: the records are the one channel to the controller
            terminalreporter.write_sep("-", "dbscope: databases of failed tests, kept")
            for nodeid, value in kept:
                write(f"{nodeid}: {value}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.memory.close()
