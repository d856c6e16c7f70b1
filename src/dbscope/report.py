"""The isolation report: one record per test, warnings, the summary, JSON in and out.

No pytest here: the plugin (reporting.py) fills records while tests run, and the
``dbscope`` command reads saved reports back. A report is a plain JSON document::

    {"schema": "dbscope-report/1", "summary": {...}, "metrics": {...}, "tests": [...]}

Every field is described in docs/report.md.

Recording has to stay cheap, a few microseconds a test: a record is a slotted
object filled from figures pytest and the manager already have; the only extra
reading is the process's resident set size, one ``pread`` of ``/proc/self/statm``
on a descriptor kept open for the session.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ReportError

__all__ = [
    "MB",
    "SCHEMA",
    "MemoryProbe",
    "Record",
    "ReportError",
    "build_report",
    "django_lines",
    "format_bytes",
    "format_ms",
    "leaking_tests",
    "load_report",
    "merge_metrics",
    "summarize",
    "summary_lines",
    "write_json",
    "write_text",
]

SCHEMA = "dbscope-report/1"
MB = 1024 * 1024  # dbscope_memory_growth_mb counts in these: the default 50 is 50 * 1024 * 1024 bytes

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
WARNING_KINDS = ("connection_leak", "scope_leak", "cleanup_failure", "slow_test", "memory_growth")
#: a report's own keys: no section takes one of these names
RESERVED = frozenset({"schema", "dbscope_version", "created_at", "settings", "summary", "metrics", "tests", "baseline"})
MEMORY_SOURCES = {
    "rss": "RSS from /proc/self/statm",
    "peak_rss": "peak RSS from getrusage(); only new peaks count as growth",
    "none": "not measured on this platform",
}


# -- memory --------------------------------------------------------------------------


class MemoryProbe:
    """Reads this process's memory, as cheaply as the platform allows.

    Linux: the resident set size, second field of ``/proc/self/statm`` (pages), read
    with ``pread`` on a descriptor opened once, no file opened per read. Elsewhere with the
    ``resource`` module (macOS, BSD): the *peak* resident set size from
    ``getrusage()``, which only grows, so growth means "a new peak". tracemalloc is
    not used: it has to trace every allocation from the start and slows the whole
    suite several times over. Without either, memory reads as 0 (source ``none``).
    """

    def __init__(self, *, statm: str = "/proc/self/statm") -> None:
        self._fd: int | None = None
        self.read: Callable[[], int] = _zero
        self.source = "none"
        try:
            fd = os.open(statm, os.O_RDONLY)
        except (OSError, AttributeError):
            fd = None
        if fd is not None:
            page = os.sysconf("SC_PAGE_SIZE")

            def rss() -> int:
                return int(os.pread(fd, 64, 0).split()[1]) * page

            try:
                rss()
            except (OSError, ValueError, IndexError):
                os.close(fd)
            else:
                self._fd, self.read, self.source = fd, rss, "rss"
                return
        try:
            import resource
        except ImportError:
            return
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kB elsewhere

        def peak() -> int:
            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale

        self.read, self.source = peak, "peak_rss"

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            self.read = _zero


def _zero() -> int:
    return 0


# -- one test ------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """What one test cost and left behind. Plain values only: it travels as JSON."""

    nodeid: str
    worker: str = "main"
    started_at: float = 0.0  # epoch seconds: orders tests across workers, never used for timing
    outcome: str = "passed"
    duration_ms: float = 0.0  # setup + call + teardown, as pytest measured them
    call_ms: float = 0.0
    setup_ms: float = 0.0  # dbscope's own work: creating and cloning this test's scope(s)
    teardown_ms: float = 0.0  # dbscope's own work: closing, leak probe, drop
    scopes: int = 0
    scope_ids: list[str] | None = None
    connections_opened: int = 0
    connections_closed: int = 0
    connections_leaked: int = 0
    scope_leaked: bool = False
    memory_growth_bytes: int = 0
    rss_bytes: int = 0
    warnings: list[dict[str, str]] | None = None
    #: a failed test's database kept by --dbscope-keep-failed: what opens it (or why it was not kept)
    kept_database: str | None = None

    def scope_ended(self, scope_id: str, setup_ms: float, teardown_ms: float, leaked: int) -> None:
        self.scopes += 1
        if self.scope_ids is None:
            self.scope_ids = [scope_id]
        else:
            self.scope_ids.append(scope_id)
        self.setup_ms += setup_ms
        self.teardown_ms += teardown_ms
        self.connections_leaked += leaked

    def warn(self, kind: str, message: str) -> None:
        entry = {"kind": kind, "message": message}
        if self.warnings is None:
            self.warnings = [entry]
        else:
            self.warnings.append(entry)

    def check(self, *, slow_test_s: float, memory_growth_mb: float) -> None:
        """Add the leak, slow-test and memory warnings this record deserves."""
        if self.connections_leaked:
            self.warn(
                "connection_leak",
                f"connection leak in {self.nodeid}: {self.connections_leaked} connection(s) left open",
            )
        if self.duration_ms > slow_test_s * 1000:
            self.warn(
                "slow_test",
                f"slow test {self.nodeid}: {format_ms(self.duration_ms)} "
                f"(over dbscope_slow_test_s = {slow_test_s:g} s)",
            )
        if self.memory_growth_bytes > memory_growth_mb * MB:
            self.warn(
                "memory_growth",
                f"memory growth in {self.nodeid}: {format_bytes(self.memory_growth_bytes)} "
                f"(over dbscope_memory_growth_mb = {memory_growth_mb:g} MB)",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "worker": self.worker,
            "started_at": round(self.started_at, 6),
            "duration_ms": round(self.duration_ms, 3),
            "call_ms": round(self.call_ms, 3),
            "setup_ms": round(self.setup_ms, 3),
            "teardown_ms": round(self.teardown_ms, 3),
            "scopes": self.scopes,
            "scope_ids": self.scope_ids or [],
            "connections_opened": self.connections_opened,
            "connections_closed": self.connections_closed,
            "connections_leaked": self.connections_leaked,
            "scope_leaked": self.scope_leaked,
            "memory_growth_bytes": self.memory_growth_bytes,
            "rss_bytes": self.rss_bytes,
            "warnings": self.warnings or [],
            "kept_database": self.kept_database,
        }


# -- the whole run -------------------------------------------------------------------


def merge_metrics(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up the workers' manager metrics; the average cleanup is weighted by scopes destroyed."""
    parts = list(parts)
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    destroyed = total.get("scopes_destroyed", 0)
    if destroyed:
        weighted = sum(p.get("average_cleanup_ms", 0) * p.get("scopes_destroyed", 0) for p in parts)
        total["average_cleanup_ms"] = round(weighted / destroyed, 3)
    elif "average_cleanup_ms" in total:
        total["average_cleanup_ms"] = 0.0
    return total


def _percent(part: int, whole: int) -> float:
    return round(part / whole * 100, 2) if whole else 0.0


def _argmax(tests: list[dict[str, Any]], key: str) -> tuple[float, str | None]:
    best: dict[str, Any] | None = None
    for test in tests:
        if best is None or test[key] > best[key]:
            best = test
    return (best[key], best["nodeid"]) if best is not None else (0, None)


def summarize(
    tests: list[dict[str, Any]],
    *,
    slow_test_s: float = 5.0,
    memory_growth_mb: float = 50.0,
    memory_source: str = "none",
) -> dict[str, Any]:
    """The run in figures. Averages are per test: a test without a scope counts with zeros."""
    n = len(tests)
    counts = dict.fromkeys(OUTCOMES, 0)
    kinds = dict.fromkeys(WARNING_KINDS, 0)
    total_ms = setup_ms = teardown_ms = 0.0
    memory = scoped = scope_leaks = connection_leaks = leaked = warnings = 0
    for test in tests:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        total_ms += test["duration_ms"]
        setup_ms += test["setup_ms"]
        teardown_ms += test["teardown_ms"]
        memory += test["memory_growth_bytes"]
        scoped += 1 if test["scopes"] else 0
        scope_leaks += 1 if test["scope_leaked"] else 0
        connection_leaks += 1 if test["connections_leaked"] else 0
        leaked += test["connections_leaked"]
        warnings += len(test["warnings"])
        for warning in test["warnings"]:
            kinds[warning["kind"]] = kinds.get(warning["kind"], 0) + 1
    max_ms, max_ms_nodeid = _argmax(tests, "duration_ms")
    max_mem, max_mem_nodeid = _argmax(tests, "memory_growth_bytes")
    overheads = [{"nodeid": t["nodeid"], "o": t["setup_ms"] + t["teardown_ms"]} for t in tests]
    max_overhead, max_overhead_nodeid = _argmax(overheads, "o")
    return {
        "tests": n,
        **counts,
        "failures": counts["failed"] + counts["error"],
        "total_duration_ms": round(total_ms, 3),
        "average_duration_ms": round(total_ms / n, 3) if n else 0.0,
        "max_duration_ms": round(max_ms, 3),
        "max_duration_nodeid": max_ms_nodeid,
        "scoped_tests": scoped,
        "average_setup_ms": round(setup_ms / n, 3) if n else 0.0,
        "average_teardown_ms": round(teardown_ms / n, 3) if n else 0.0,
        "average_overhead_ms": round((setup_ms + teardown_ms) / n, 3) if n else 0.0,
        "max_overhead_ms": round(max_overhead, 3),
        "max_overhead_nodeid": max_overhead_nodeid,
        "scope_leaks": scope_leaks,
        "scope_leak_percent": _percent(scope_leaks, n),
        "connection_leaks": connection_leaks,
        "connection_leak_percent": _percent(connection_leaks, n),
        "connections_leaked": leaked,
        "slow_tests": kinds["slow_test"],
        "slow_test_s": slow_test_s,
        "memory_source": memory_source,
        "total_memory_growth_bytes": memory,
        "average_memory_growth_bytes": round(memory / n) if n else 0,
        "max_memory_growth_bytes": max_mem,
        "max_memory_growth_nodeid": max_mem_nodeid,
        "memory_growth_warnings": kinds["memory_growth"],
        "memory_growth_mb": memory_growth_mb,
        "warnings": warnings,
    }


def build_report(
    tests: list[dict[str, Any]],
    metrics: Mapping[str, Any],
    *,
    slow_test_s: float = 5.0,
    memory_growth_mb: float = 50.0,
    memory_source: str = "none",
    workers: Iterable[str] = (),
    missing_workers: Iterable[str] = (),
    settings: Mapping[str, Any] | None = None,
    version: str | None = None,
    sections: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The whole report document, tests in the order they started.

    ``sections``: more of the run's figures, each under its own name (``django``: the
    templates and restores of dbscope.django, one row per alias and worker).
    """
    ordered = sorted(tests, key=lambda t: t["started_at"])
    summary = summarize(
        ordered, slow_test_s=slow_test_s, memory_growth_mb=memory_growth_mb, memory_source=memory_source
    )
    summary["workers"] = sorted(set(workers)) or sorted({t["worker"] for t in ordered})
    summary["missing_workers"] = sorted(set(missing_workers))
    return {
        "schema": SCHEMA,
        "dbscope_version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {"slow_test_s": slow_test_s, "memory_growth_mb": memory_growth_mb, **(settings or {})},
        "summary": summary,
        "metrics": dict(metrics),
        **{name: list(rows) for name, rows in (sections or {}).items() if name not in RESERVED},
        "tests": ordered,
    }


def leaking_tests(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(nodeid, what leaked) for every test that left a connection or a scope behind."""
    offenders = []
    for test in report["tests"]:
        what = []
        if test["connections_leaked"]:
            what.append(f"{test['connections_leaked']} connection(s) left open")
        if test["scope_leaked"]:
            what.append("a scope left active")
        if what:
            offenders.append((test["nodeid"], ", ".join(what)))
    return offenders


# -- text ----------------------------------------------------------------------------


def format_ms(ms: float) -> str:
    """Milliseconds for people: 0.312 ms, 41.7 ms, 6.21 s."""
    if abs(ms) >= 1000:
        return f"{ms / 1000:.2f} s"
    if abs(ms) >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.3f} ms"


def format_bytes(value: float) -> str:
    """Bytes for people in binary units, labelled as the settings are: 512 B, 12.0 kB, 1.25 MB."""
    size = abs(value)
    sign = "-" if value < 0 else ""
    if size >= 1024 * MB:
        return f"{sign}{size / (1024 * MB):.2f} GB"
    if size >= MB:
        return f"{sign}{size / MB:.2f} MB"
    if size >= 1024:
        return f"{sign}{size / 1024:.1f} kB"
    return f"{sign}{size:.0f} B"


def summary_lines(report: Mapping[str, Any], *, max_warnings: int | None = 25) -> list[tuple[str, str | None]]:
    """The terminal report as (line, colour) pairs; colour is None, "red" or "yellow".

    At most ``max_warnings`` warnings of each kind are listed (None: all); the rest
    are counted, and all of them are in the JSON report.
    """
    s, m = report["summary"], report["metrics"]
    n = s["tests"]
    outcomes = ", ".join(f"{s[k]} {k}" for k in OUTCOMES if s.get(k))
    lines: list[tuple[str, str | None]] = []
    maximum = f", max {format_ms(s['max_duration_ms'])} ({s['max_duration_nodeid']})" if n else ""
    counted = f" ({outcomes})" if outcomes else ""
    average = format_ms(s["average_duration_ms"])
    lines.append(
        (
            f"tests: {n}{counted}, failures: {s['failures']}, average duration: {average}{maximum}",
            "red" if s["failures"] else None,
        )
    )
    lines.append(
        (
            (
                f"dbscope overhead per test: setup {format_ms(s['average_setup_ms'])}, teardown "
                f"{format_ms(s['average_teardown_ms'])} ({s['scoped_tests']} of {n} tests used a scope)"
            ),
            None,
        )
    )
    lines.append(
        (
            (
                f"scope leaks: {s['scope_leaks']} ({s['scope_leak_percent']:.2f}%), connection leaks: "
                f"{s['connection_leaks']} ({s['connection_leak_percent']:.2f}%) with {s['connections_leaked']} "
                "connection(s) left open"
            ),
            "red" if s["scope_leaks"] or s["connection_leaks"] else None,
        )
    )
    lines.append(
        (f"slow tests (over {s['slow_test_s']:g} s): {s['slow_tests']}", "yellow" if s["slow_tests"] else None)
    )
    source = MEMORY_SOURCES.get(s["memory_source"], s["memory_source"])
    lines.append(
        (
            f"memory ({source}): average growth {format_bytes(s['average_memory_growth_bytes'])} per test, max "
            f"{format_bytes(s['max_memory_growth_bytes'])}"
            + (f" ({s['max_memory_growth_nodeid']})" if s["max_memory_growth_nodeid"] else "")
            + f", over {s['memory_growth_mb']:g} MB: {s['memory_growth_warnings']}",
            "yellow" if s["memory_growth_warnings"] else None,
        )
    )
    if len(s.get("workers", [])) > 1:
        lines.append((f"workers: {len(s['workers'])} ({', '.join(s['workers'])})", None))
    for worker in s.get("missing_workers", []):
        lines.append((f"worker {worker} went down before sending its records: its tests are missing here", "red"))
    if m and (m.get("scopes_created") or not report.get("django")):  # a Django suite's tests have no dbscope scope
        lines.append((f"scopes created: {m.get('scopes_created', 0)}, destroyed: {m.get('scopes_destroyed', 0)}", None))
        connections = (
            f"connections created: {m.get('connections_created', 0)}, closed: {m.get('connections_closed', 0)}, "
            f"leaked: {m.get('connections_leaked', 0)}"
        )
        cleanup = (
            f"average cleanup: {m.get('average_cleanup_ms', 0.0):.3f} ms, emergency cleanups: "
            f"{m.get('emergency_cleanups', 0)}, modules cleared: {m.get('modules_cleared', 0)}"
        )
        lines += [(connections, None), (cleanup, None)]
    lines += django_lines(report.get("django") or [])
    shown = dict.fromkeys(WARNING_KINDS, 0)
    for test in report["tests"]:
        for warning in test["warnings"]:
            kind = warning["kind"]
            shown[kind] = shown.get(kind, 0) + 1
            if max_warnings is None or shown[kind] <= max_warnings:
                lines.append((warning["message"], "yellow" if kind in ("slow_test", "memory_growth") else "red"))
    for kind, count in shown.items():
        if max_warnings is not None and count > max_warnings:
            lines.append(
                (
                    f"... and {count - max_warnings} more {kind.replace('_', ' ')} warning(s): "
                    "see the JSON report or -v",
                    None,
                )
            )
    return lines


def django_lines(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """The ``django`` section as lines: per alias (and worker), its template and its restores."""
    lines: list[tuple[str, str | None]] = []
    for row in rows:
        if not lines:
            lines.append(("Django test databases (dbscope_django), per alias:", None))
        worker = row.get("worker", "main")
        where = f"[{worker}] " if worker != "main" else ""
        restores = row["restores"]
        mean = f", mean {format_ms(1000 * row['restore_s'] / restores)}" if restores else ""
        lines.append(
            (
                f"  {where}{row['alias']} ({row['engine']}): template {'built' if row['built'] else 'reused'}, "
                f"ready in {row['ready_s']:.3f} s; {restores} transactional restores{mean}",
                None,
            )
        )
    return lines


# -- files ---------------------------------------------------------------------------


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` atomically (a temporary file, then rename), creating the directory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:  # "x" and open(): the umask applies, not mkstemp's 0600
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as JSON, atomically; a report's tests one per line (greppable, and half the size)."""
    if isinstance(data, dict) and isinstance(data.get("tests"), list) and data["tests"]:
        head = json.dumps({k: v for k, v in data.items() if k != "tests"}, indent=1)
        rows = ",\n  ".join(json.dumps(test, separators=(", ", ": ")) for test in data["tests"])
        return write_text(path, f'{head[:-2]},\n "tests": [\n  {rows}\n ]\n}}\n')
    return write_text(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | os.PathLike[str], *, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{what} {os.fspath(path)!r} does not exist") from None
    except OSError as exc:
        raise ReportError(f"cannot read {what} {os.fspath(path)!r}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{what} {os.fspath(path)!r} is not JSON ({exc})") from None


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A report written by ``--dbscope-report``; ReportError says what is wrong with it."""
    data = read_json(path, what="report")
    if not isinstance(data, dict) or not {"summary", "metrics", "tests"} <= set(data):
        raise ReportError(
            f"{os.fspath(path)!r} is not a dbscope report (no summary, metrics and tests); "
            "write one with pytest --dbscope-report=PATH"
        )
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ReportError(f"{os.fspath(path)!r} is a {schema!r} file; this dbscope reads {SCHEMA!r}")
    return data
