"""Shared by the benchmarks: generated pytest suites, run whole, timed by their test loop."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

#: conftest code that writes the duration of the test loop (not start-up, not collection)
LOOP_TIMER = '''
@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        with open(os.environ["BENCH_LOOP_FILE"], "w") as out:
            out.write(repr(time.perf_counter() - started))
'''


def write_tests(root: Path, tests: int, variants: dict[str, str]) -> None:
    """One file ``test_<name>.py`` per variant, each with ``tests`` trivial tests using ``fixture``."""
    for name, fixture in variants.items():
        (root / f"test_{name}.py").write_text(
            textwrap.dedent(
                f"""
                import pytest

                @pytest.mark.parametrize("n", range({tests}))
                def test_{name}({fixture + ', ' if fixture else ''}n):
                    pass
                """
            )
        )


def run_suite(root: Path, file: str, extra: list[str], *, env: dict[str, str] | None = None) -> float:
    """Run one generated suite in a fresh interpreter; return its test loop's seconds."""
    loop_file = root / "loop_seconds.txt"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-p", "no:benchmark", file, *extra]
    run_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "BENCH_LOOP_FILE": str(loop_file), **(env or {})}
    done = subprocess.run(command, cwd=root, env=run_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return float(loop_file.read_text())


def overheads(times: dict[str, list[float]], baseline: str, tests: int) -> dict[str, dict[str, float]]:
    """Per-test overhead of each variant over the baseline, round by round; medians and spread."""
    base = times[baseline]
    results = {}
    for name, values in times.items():
        per_test = [(v - b) * 1000 / tests for v, b in zip(values, base)]
        results[name] = {
            "loop_median_s": statistics.median(values),
            "overhead_per_test_ms": statistics.median(per_test),
            "overhead_min_ms": min(per_test),
            "overhead_max_ms": max(per_test),
        }
    return results
