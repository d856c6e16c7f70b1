"""Performance baselines: save a run's figures, compare a later run with them.

A warning when the average test duration grows past 1.2x the baseline's or the average
memory growth past 1.3x, a failure when the slowest test takes more than 1.5x the
baseline's slowest.

Small absolute values would make those ratios noise: 1.2x of a 0.2 ms average is
40 µs, less than a scheduler hiccup on a shared CI machine, and memory grows in
whole pages and malloc arenas. So a figure regresses only when it passes *both*
the factor and an absolute slack over the baseline::

    threshold = max(baseline * factor, baseline + slack)

with slacks of 0.5 ms (average duration), 20 ms (slowest test: one sample, the
noisiest figure) and 256 kB (average memory growth). Above a few milliseconds the
factor decides alone. The max memory growth and the average cleanup time are saved
and shown for context, not judged.

No pytest here: the plugin and the ``dbscope baseline`` command share this module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import SCHEMA as REPORT_SCHEMA
from .report import ReportError, format_bytes, format_ms, read_json, write_json

__all__ = [
    "RULES",
    "SCHEMA",
    "Comparison",
    "Rule",
    "baseline_from_report",
    "compare",
    "comparison_lines",
    "context_notes",
    "has_failures",
    "load_baseline",
    "save_baseline",
]

SCHEMA = "dbscope-baseline/1"


@dataclass(frozen=True)
class Rule:
    """How one figure is judged: above ``max(baseline * factor, baseline + slack)`` is ``severity``."""

    key: str
    label: str
    unit: str  # "ms" or "bytes"
    factor: float | None = None  # None: saved and shown, not judged
    slack: float = 0.0
    severity: str = "warning"


RULES: tuple[Rule, ...] = (
    Rule("average_duration_ms", "average test duration", "ms", 1.2, 0.5, "warning"),
    Rule("max_duration_ms", "max test duration", "ms", 1.5, 20.0, "failure"),
    Rule("average_memory_growth_bytes", "average memory growth", "bytes", 1.3, 256 * 1024, "warning"),
    Rule("max_memory_growth_bytes", "max memory growth", "bytes"),
    Rule("average_cleanup_ms", "average cleanup", "ms"),
)
_MEMORY_KEYS = {"average_memory_growth_bytes", "max_memory_growth_bytes"}


@dataclass(frozen=True)
class Comparison:
    """One row of the regression table."""

    rule: Rule
    baseline: float | None
    current: float | None
    threshold: float | None
    status: str  # "ok", "warning", "failure" or "not compared"
    note: str = ""

    @property
    def change_percent(self) -> float | None:
        if self.baseline is None or self.current is None or self.baseline == 0:
            return None
        return round((self.current / self.baseline - 1) * 100, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.rule.key,
            "label": self.rule.label,
            "unit": self.rule.unit,
            "baseline": self.baseline,
            "current": self.current,
            "threshold": None if self.threshold is None else round(self.threshold, 3),
            "factor": self.rule.factor,
            "change_percent": self.change_percent,
            "status": self.status,
            "note": self.note,
        }


def baseline_from_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline document from a report (or a baseline, returned as it is)."""
    if report.get("schema") == SCHEMA:
        return dict(report)
    summary, metrics = report["summary"], report["metrics"]
    return {
        "schema": SCHEMA,
        "dbscope_version": report.get("dbscope_version"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tests": summary["tests"],
        "workers": max(1, len(summary.get("workers", []))),
        "memory_source": summary.get("memory_source", "none"),
        "average_duration_ms": summary["average_duration_ms"],
        "max_duration_ms": summary["max_duration_ms"],
        "max_duration_nodeid": summary.get("max_duration_nodeid"),
        "average_memory_growth_bytes": summary["average_memory_growth_bytes"],
        "max_memory_growth_bytes": summary["max_memory_growth_bytes"],
        "average_cleanup_ms": metrics.get("average_cleanup_ms", 0.0),
    }


def save_baseline(path: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    """Write the baseline of ``report`` to ``path`` (JSON)."""
    return write_json(path, baseline_from_report(report))


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A baseline file, or a whole report (its figures are used). ReportError if neither."""
    data = read_json(path, what="baseline")
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        missing = [r.key for r in RULES if r.factor is not None and r.key not in data]
        if missing:
            raise ReportError(f"baseline {os.fspath(path)!r} has no {', '.join(missing)}; save it again")
        return data
    if (
        isinstance(data, dict)
        and data.get("schema", REPORT_SCHEMA) == REPORT_SCHEMA
        and {"summary", "metrics"} <= set(data)
    ):
        return baseline_from_report(data)
    raise ReportError(
        f"{os.fspath(path)!r} is not a dbscope baseline; save one with pytest --dbscope-save-baseline=PATH "
        "or dbscope baseline save RUN.json BASE.json"
    )


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[Comparison]:
    """Judge the ``current`` figures (a report or a baseline) against ``baseline``, one row per rule."""
    now = baseline_from_report(current)
    same_memory = baseline.get("memory_source", "none") == now.get("memory_source", "none")
    rows = []
    for rule in RULES:
        base, value = baseline.get(rule.key), now.get(rule.key)
        if base is None or value is None:
            rows.append(Comparison(rule, base, value, None, "not compared", "missing in one of the files"))
            continue
        if rule.key in _MEMORY_KEYS and not same_memory:
            rows.append(
                Comparison(
                    rule,
                    base,
                    value,
                    None,
                    "not compared",
                    f"memory measured differently ({baseline.get('memory_source')} vs {now.get('memory_source')})",
                )
            )
            continue
        if rule.factor is None:
            rows.append(Comparison(rule, base, value, None, "not compared", "for context"))
            continue
        threshold = max(base * rule.factor, base + rule.slack)
        status = rule.severity if value > threshold else "ok"
        rows.append(Comparison(rule, base, value, threshold, status))
    return rows


def context_notes(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Differences between the two runs that make the comparison less meaningful."""
    now = baseline_from_report(current)
    notes = []
    if baseline.get("workers", 1) != now.get("workers", 1):
        notes.append(
            f"the baseline ran on {baseline.get('workers', 1)} worker(s), this run on {now.get('workers', 1)}: "
            "durations are not comparable one to one"
        )
    if baseline.get("tests") and now.get("tests") != baseline.get("tests"):
        notes.append(f"the baseline has {baseline['tests']} test(s), this run {now.get('tests')}")
    return notes


def has_failures(rows: list[Comparison]) -> bool:
    return any(row.status == "failure" for row in rows)


def _value(rule: Rule, value: float | None) -> str:
    if value is None:
        return "-"
    return format_ms(value) if rule.unit == "ms" else format_bytes(value)


def comparison_lines(
    rows: list[Comparison], *, source: str | None = None, notes: list[str] | None = None
) -> list[tuple[str, str | None]]:
    """The regression table as (line, colour) pairs, colour None, "yellow" or "red"."""
    table = [("metric", "baseline", "current", "threshold", "change", "status")]
    for row in rows:
        change = row.change_percent
        table.append(
            (
                row.rule.label,
                _value(row.rule, row.baseline),
                _value(row.rule, row.current),
                _value(row.rule, row.threshold) if row.threshold is not None else "-",
                "-" if change is None else f"{change:+.1f}%",
                row.status.upper() if row.status == "failure" else row.status,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines: list[tuple[str, str | None]] = []
    if source:
        lines.append((f"compared with the baseline {source}", None))
    for i, cells in enumerate(table):
        last = len(cells) - 1
        text = "  ".join(
            c.ljust(w) if j in (0, last) else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()
        status = rows[i - 1].status if i else ""
        lines.append((text, {"failure": "red", "warning": "yellow"}.get(status)))
    notes = [
        *(notes or []),
        *(f"{row.rule.label}: {row.note}" for row in rows if row.note and row.note != "for context"),
    ]
    lines += [(f"note: {note}", None) for note in notes]
    failures = sum(1 for r in rows if r.status == "failure")
    warnings = sum(1 for r in rows if r.status == "warning")
    if failures:
        lines.append((f"{failures} performance regression(s) over the failure threshold", "red"))
    elif warnings:
        lines.append((f"{warnings} performance warning(s); no failure", "yellow"))
    else:
        lines.append(("no performance regression", None))
    return lines
