"""Unit tests of report.py and baseline.py: records, warnings, summary, JSON, baselines."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dbscope.baseline import (
    RULES,
    Comparison,
    baseline_from_report,
    compare,
    comparison_lines,
    context_notes,
    has_failures,
    load_baseline,
    save_baseline,
)
from dbscope.report import (
    MB,
    MemoryProbe,
    Record,
    ReportError,
    build_report,
    format_bytes,
    format_ms,
    leaking_tests,
    load_report,
    merge_metrics,
    summarize,
    summary_lines,
    write_json,
)

METRICS = {
    "scopes_created": 3,
    "scopes_destroyed": 3,
    "connections_created": 4,
    "connections_closed": 4,
    "connections_leaked": 1,
    "average_cleanup_ms": 0.25,
    "emergency_cleanups": 0,
    "modules_cleared": 0,
}


def record(nodeid: str, **values: Any) -> dict[str, Any]:
    rec = Record(nodeid, started_at=values.pop("started_at", time.time()))
    for key, value in values.items():
        setattr(rec, key, value)
    rec.check(slow_test_s=5, memory_growth_mb=50)
    return rec.to_dict()


def sample_report(**kwargs: Any) -> dict[str, Any]:
    tests = [
        record("t.py::test_clean", duration_ms=2.0, setup_ms=0.3, teardown_ms=0.1, scopes=1, started_at=1.0),
        record(
            "t.py::test_leaky",
            duration_ms=4.0,
            setup_ms=0.3,
            teardown_ms=0.2,
            scopes=1,
            connections_leaked=2,
            started_at=2.0,
        ),
        record("t.py::test_slow", duration_ms=6000.0, outcome="failed", started_at=3.0),
        record("t.py::test_no_scope", duration_ms=0.5, memory_growth_bytes=60 * MB, started_at=4.0),
    ]
    return build_report(tests, METRICS, memory_source="rss", **kwargs)


# -- records and warnings -------------------------------------------------------------


def test_a_record_without_a_scope_has_zeros_and_no_warnings() -> None:
    data = Record("t.py::test_plain").to_dict()
    assert data["setup_ms"] == data["teardown_ms"] == data["connections_leaked"] == data["memory_growth_bytes"] == 0
    assert data["scope_leaked"] is False and data["warnings"] == [] and data["scope_ids"] == []
    assert json.loads(json.dumps(data)) == data


def test_each_warning_names_the_test_and_the_threshold() -> None:
    rec = Record("t.py::test_x", duration_ms=6200.0, connections_leaked=1, memory_growth_bytes=51 * MB)
    rec.check(slow_test_s=5, memory_growth_mb=50)
    assert rec.warnings is not None
    messages = {w["kind"]: w["message"] for w in rec.warnings}
    assert messages == {
        "connection_leak": "connection leak in t.py::test_x: 1 connection(s) left open",
        "slow_test": "slow test t.py::test_x: 6.20 s (over dbscope_slow_test_s = 5 s)",
        "memory_growth": "memory growth in t.py::test_x: 51.00 MB (over dbscope_memory_growth_mb = 50 MB)",
    }


def test_thresholds_are_strictly_over() -> None:
    rec = Record("t.py::test_edge", duration_ms=5000.0, memory_growth_bytes=50 * MB)
    rec.check(slow_test_s=5, memory_growth_mb=50)
    assert rec.warnings is None


def test_ended_scopes_add_up_in_the_record() -> None:
    rec = Record("t.py::test_two_scopes")
    rec.scope_ended("test_1_aaaa", 0.5, 0.25, 0)
    rec.scope_ended("test_2_bbbb", 1.0, 0.5, 1)
    assert (rec.scopes, rec.scope_ids, rec.setup_ms, rec.teardown_ms, rec.connections_leaked) == (
        2,
        ["test_1_aaaa", "test_2_bbbb"],
        1.5,
        0.75,
        1,
    )


# -- the summary ----------------------------------------------------------------------


def test_the_summary_counts_per_test_including_tests_without_a_scope() -> None:
    summary = sample_report()["summary"]
    assert summary["tests"] == 4
    assert (summary["passed"], summary["failed"], summary["failures"]) == (3, 1, 1)
    assert summary["average_duration_ms"] == pytest.approx((2 + 4 + 6000 + 0.5) / 4, abs=1e-3)
    assert summary["max_duration_nodeid"] == "t.py::test_slow"
    assert summary["scoped_tests"] == 2
    assert summary["average_setup_ms"] == pytest.approx(0.15)
    assert (summary["connection_leaks"], summary["connection_leak_percent"], summary["connections_leaked"]) == (
        1,
        25.0,
        2,
    )
    assert (summary["scope_leaks"], summary["slow_tests"], summary["memory_growth_warnings"]) == (0, 1, 1)
    assert summary["max_memory_growth_nodeid"] == "t.py::test_no_scope"


def test_an_empty_run_summarizes_to_zeros() -> None:
    summary = summarize([])
    assert summary["tests"] == 0 and summary["average_duration_ms"] == 0.0 and summary["max_duration_nodeid"] is None


def test_the_report_orders_tests_by_start_and_is_json() -> None:
    tests = [record("b", started_at=2.0), record("a", started_at=1.0)]
    report = build_report(tests, METRICS, workers=["gw1", "gw0"])
    assert [t["nodeid"] for t in report["tests"]] == ["a", "b"]
    assert report["summary"]["workers"] == ["gw0", "gw1"]
    assert set(report) >= {"schema", "summary", "metrics", "tests", "settings", "created_at"}
    assert json.loads(json.dumps(report)) == report


def test_summary_lines_keep_the_established_lines() -> None:
    lines = [text for text, _ in summary_lines(sample_report())]
    assert "scopes created: 3, destroyed: 3" in lines
    assert "connections created: 4, closed: 4, leaked: 1" in lines
    assert "connection leak in t.py::test_leaky: 2 connection(s) left open" in lines
    assert lines[0].startswith("tests: 4 (3 passed, 1 failed), failures: 1, average duration: 1.50 s")
    assert any(line.startswith("scope leaks: 0 (0.00%), connection leaks: 1 (25.00%)") for line in lines)
    assert any(
        line.startswith("memory (RSS from /proc/self/statm): average growth 15.00 MB per test") for line in lines
    )


def test_summary_lines_cap_each_kind_of_warning() -> None:
    tests = [record(f"t.py::test_{i}", connections_leaked=1, started_at=i) for i in range(30)]
    report = build_report(tests, METRICS)
    capped = [text for text, _ in summary_lines(report, max_warnings=5)]
    assert sum(text.startswith("connection leak in") for text in capped) == 5
    assert "... and 25 more connection leak warning(s): see the JSON report or -v" in capped
    full = [text for text, _ in summary_lines(report, max_warnings=None)]
    assert sum(text.startswith("connection leak in") for text in full) == 30


def test_leaking_tests_names_connections_and_scopes() -> None:
    tests = [record("t.py::a", connections_leaked=1), record("t.py::b", scope_leaked=True), record("t.py::c")]
    assert leaking_tests(build_report(tests, METRICS)) == [
        ("t.py::a", "1 connection(s) left open"),
        ("t.py::b", "a scope left active"),
    ]


def test_worker_metrics_merge_with_a_weighted_average_cleanup() -> None:
    merged = merge_metrics(
        [
            {"scopes_destroyed": 1, "average_cleanup_ms": 1.0, "connections_leaked": 0},
            {"scopes_destroyed": 3, "average_cleanup_ms": 3.0, "connections_leaked": 2},
        ]
    )
    assert merged == {"scopes_destroyed": 4, "average_cleanup_ms": 2.5, "connections_leaked": 2}
    assert merge_metrics([{"scopes_destroyed": 0, "average_cleanup_ms": 0.0}])["average_cleanup_ms"] == 0.0


@pytest.mark.parametrize(
    ("ms", "text"), [(0.3124, "0.312 ms"), (41.66, "41.7 ms"), (6210, "6.21 s"), (-2.0, "-2.000 ms")]
)
def test_format_ms(ms: float, text: str) -> None:
    assert format_ms(ms) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(512, "512 B"), (12 * 1024, "12.0 kB"), (1.25 * MB, "1.25 MB"), (-3 * MB, "-3.00 MB"), (2048 * MB, "2.00 GB")],
)
def test_format_bytes(value: float, text: str) -> None:
    assert format_bytes(value) == text


# -- memory ---------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_memory_is_the_resident_set_from_proc_and_sees_growth() -> None:
    probe = MemoryProbe()
    try:
        assert probe.source == "rss"
        before = probe.read()
        ballast = b"x" * (40 * MB)  # written, and over glibc's largest mmap threshold: fresh resident pages
        grown = probe.read() - before
        assert len(ballast) and grown >= 36 * MB
    finally:
        probe.close()
    assert probe.read() == 0


def test_without_proc_memory_falls_back_to_getrusage(tmp_path: Path) -> None:
    probe = MemoryProbe(statm=str(tmp_path / "missing"))
    assert probe.source == "peak_rss"
    assert probe.read() > 1 * MB  # a Python process is bigger than that


def test_a_garbled_statm_falls_back_too(tmp_path: Path) -> None:
    statm = tmp_path / "statm"
    statm.write_text("garbage\n")
    assert MemoryProbe(statm=str(statm)).source == "peak_rss"


def test_a_record_of_a_test_flags_only_what_crossed_a_threshold() -> None:
    """What the plugin does per test beyond pytest's own work (benchmarks/bench_report_hooks.py times it)."""
    probe = MemoryProbe()
    try:
        rec = Record("tests/test_x.py::test_y[3]", "gw0", time.time())
        rec.duration_ms += 0.1
        rec.call_ms = 0.2
        rec.scope_ended("test_1_abcdef01", 0.3, 0.1, 0)
        rec.memory_growth_bytes = probe.read() - probe.read()
        rec.check(slow_test_s=5, memory_growth_mb=50)
        record = rec.to_dict()
    finally:
        probe.close()
    assert record["nodeid"] == "tests/test_x.py::test_y[3]" and record["scope_ids"] == ["test_1_abcdef01"]
    assert rec.warnings is None
    slow = Record("tests/test_x.py::test_slow", "gw0", time.time(), duration_ms=5001.0)
    slow.check(slow_test_s=5, memory_growth_mb=50)
    assert [warning["kind"] for warning in slow.warnings or []] == ["slow_test"]


# -- files ----------------------------------------------------------------------------


def test_a_report_round_trips_through_its_file(tmp_path: Path) -> None:
    report = sample_report()
    path = write_json(tmp_path / "out" / "report.json", report)
    assert load_report(path) == report
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"report '.*missing.json' does not exist"),
        ("{not json", r"report '.*' is not JSON"),
        (
            '{"tests": []}',
            r"is not a dbscope report \(no summary, metrics and tests\); write one with pytest --dbscope-report",
        ),
        ('{"schema": "dbscope-report/9", "summary": {}, "metrics": {}, "tests": []}', r"is a 'dbscope-report/9' file"),
    ],
)
def test_a_bad_report_file_says_what_is_wrong(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "missing.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError, match=match):
        load_report(path)


# -- baselines ------------------------------------------------------------------------


def figures(**values: Any) -> dict[str, Any]:
    base = {
        "schema": "dbscope-baseline/1",
        "tests": 10,
        "workers": 1,
        "memory_source": "rss",
        "average_duration_ms": 100.0,
        "max_duration_ms": 400.0,
        "average_memory_growth_bytes": 10 * MB,
        "max_memory_growth_bytes": 20 * MB,
        "average_cleanup_ms": 1.0,
    }
    return {**base, **values}


def statuses(rows: Iterable[Comparison]) -> dict[str, str]:
    return {row.rule.key: row.status for row in rows}


def test_the_seed_thresholds_warning_at_1_2_and_1_3_failure_at_1_5() -> None:
    rows = compare(
        figures(), figures(average_duration_ms=121.0, max_duration_ms=601.0, average_memory_growth_bytes=13.1 * MB)
    )
    assert statuses(rows) == {
        "average_duration_ms": "warning",
        "max_duration_ms": "failure",
        "average_memory_growth_bytes": "warning",
        "max_memory_growth_bytes": "not compared",
        "average_cleanup_ms": "not compared",
    }
    assert has_failures(rows)
    row = rows[1]
    assert (row.threshold, row.change_percent) == (600.0, 50.2)


def test_just_under_the_thresholds_is_ok() -> None:
    rows = compare(
        figures(), figures(average_duration_ms=119.0, max_duration_ms=599.0, average_memory_growth_bytes=12.9 * MB)
    )
    assert {
        s
        for k, s in statuses(rows).items()
        if k in ("average_duration_ms", "max_duration_ms", "average_memory_growth_bytes")
    } == {"ok"}
    assert not has_failures(rows)


def test_tiny_values_need_an_absolute_margin_too() -> None:
    # 0.2 ms -> 0.5 ms is 2.5x, but 0.3 ms is scheduler noise; a 5 ms test at 12 ms is noise too.
    base = figures(average_duration_ms=0.2, max_duration_ms=5.0, average_memory_growth_bytes=1000)
    rows = compare(base, figures(average_duration_ms=0.5, max_duration_ms=12.0, average_memory_growth_bytes=100_000))
    assert not has_failures(rows) and "warning" not in statuses(rows).values()
    rows = compare(base, figures(average_duration_ms=0.8, max_duration_ms=30.0, average_memory_growth_bytes=400_000))
    assert statuses(rows)["max_duration_ms"] == "failure"
    assert statuses(rows)["average_duration_ms"] == statuses(rows)["average_memory_growth_bytes"] == "warning"
    assert {r.key: r.slack for r in RULES if r.factor} == {
        "average_duration_ms": 0.5,
        "max_duration_ms": 20.0,
        "average_memory_growth_bytes": 256 * 1024,
    }


def test_memory_measured_differently_is_not_compared() -> None:
    rows = compare(figures(memory_source="peak_rss"), figures(average_memory_growth_bytes=99 * MB))
    assert statuses(rows)["average_memory_growth_bytes"] == "not compared"
    assert "memory measured differently (peak_rss vs rss)" in rows[2].note


def test_a_baseline_is_made_from_a_report_and_read_back(tmp_path: Path) -> None:
    report = sample_report()
    path = save_baseline(tmp_path / "base.json", report)
    saved = load_baseline(path)
    assert saved["average_duration_ms"] == report["summary"]["average_duration_ms"]
    assert saved["max_duration_ms"] == 6000.0 and saved["max_duration_nodeid"] == "t.py::test_slow"
    assert saved["average_cleanup_ms"] == 0.25 and saved["tests"] == 4
    assert not has_failures(compare(saved, report))
    assert load_baseline(write_json(tmp_path / "run.json", report))["max_duration_ms"] == 6000.0  # a report works too


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"schema": "something-else"}', r"is not a dbscope baseline; save one with pytest --dbscope-save-baseline"),
        (
            '{"schema": "dbscope-baseline/1", "average_duration_ms": 1}',
            r"has no max_duration_ms, average_memory_growth_bytes; save it again",
        ),
        ("[1, 2]", r"is not a dbscope baseline"),
    ],
)
def test_a_bad_baseline_file_says_what_is_wrong(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "base.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=match):
        load_baseline(path)


def test_the_regression_table_reads_as_a_table() -> None:
    rows = compare(figures(), figures(max_duration_ms=700.0))
    lines = comparison_lines(rows, source="base.json", notes=context_notes(figures(workers=4), figures()))
    texts = [text for text, _ in lines]
    assert texts[0] == "compared with the baseline base.json"
    assert texts[1].split() == ["metric", "baseline", "current", "threshold", "change", "status"]
    assert texts[3].split() == [
        "max",
        "test",
        "duration",
        "400.0",
        "ms",
        "700.0",
        "ms",
        "600.0",
        "ms",
        "+75.0%",
        "FAILURE",
    ]
    assert dict(lines)[texts[3]] == "red"
    assert "note: the baseline ran on 4 worker(s), this run on 1: durations are not comparable one to one" in texts
    assert texts[-1] == "1 performance regression(s) over the failure threshold"


def test_baseline_from_report_keeps_a_baseline_as_it_is() -> None:
    assert baseline_from_report(figures()) == figures()
