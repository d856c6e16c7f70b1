"""What the per-test report's recording costs: the report plugin's own hooks, driven directly.

Recording is done for every test, also when no report file is asked for. This drives
``ReportPlugin``'s hooks for one test without a scope (``pytest_runtest_protocol`` around
the setup, call and teardown reports), as pytest would, without pytest's own work around
them: ROUNDS rounds of N tests each, the per-test time of every round, median and best.
Then a record alone, as the plugin fills it per test (a ``Record``, one RSS read, the
threshold checks, ``to_dict()``).
Whole runs with and without ``--dbscope-report`` are ``bench_sqlite.py``'s "dbscope db +
JSON report" row.

Usage: python benchmarks/bench_report_hooks.py [--tests 2000] [--rounds 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from dbscope import IsolationManager
from dbscope.report import MemoryProbe, Record
from dbscope.reporting import ReportPlugin

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", default=str(HERE / "results" / "report_hooks.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, IsolationManager("sqlite://") as manager:
        config: Any = types.SimpleNamespace(invocation_params=types.SimpleNamespace(dir=Path(tmp)))
        plugin = ReportPlugin(config, manager)
        item: Any = types.SimpleNamespace(nodeid="tests/test_x.py::test_y[3]")
        reports: list[Any] = [
            types.SimpleNamespace(nodeid=item.nodeid, when=when, duration=0.0001, failed=False, skipped=False)
            for when in ("setup", "call", "teardown")
        ]
        per_test_us: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(args.tests):
                hook = plugin.pytest_runtest_protocol(item, None)
                next(hook)
                for report in reports:
                    plugin.pytest_runtest_logreport(report)
                try:
                    hook.send(None)
                except StopIteration:
                    pass
            per_test_us.append((time.perf_counter() - started) / args.tests * 1e6)
        plugin.memory.close()
        recorded = len(plugin.records)
    probe = MemoryProbe()
    record_us: list[float] = []
    try:
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(args.tests):
                rec = Record("tests/test_x.py::test_y[3]", "gw0", time.time())
                rec.duration_ms += 0.3
                rec.call_ms = 0.2
                rec.scope_ended("test_1_abcdef01", 0.3, 0.1, 0)
                rec.memory_growth_bytes = probe.read() - 1000
                rec.check(slow_test_s=5, memory_growth_mb=50)
                rec.to_dict()
            record_us.append((time.perf_counter() - started) / args.tests * 1e6)
    finally:
        probe.close()
    load_after = os.getloadavg()[0]
    median, best = statistics.median(per_test_us), min(per_test_us)
    load = f"load {load_before:.1f}-{load_after:.1f}"
    print(f"report recording, {args.tests} tests x {args.rounds} rounds ({recorded} records), {load}")
    print("| per test | median | best |")
    print("| --- | --- | --- |")
    print(f"| the report plugin's hooks | {median:.1f} µs | {best:.1f} µs |")
    alone = f"{statistics.median(record_us):.1f} µs | {min(record_us):.1f} µs"
    print(f"| a record alone (RSS read, checks, to_dict) | {alone} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "tests": args.tests,
                "rounds": args.rounds,
                "records": recorded,
                "per_test_us": per_test_us,
                "median_us": median,
                "best_us": best,
                "record_us": record_us,
                "load_average": {"before": load_before, "after": load_after},
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
