"""The problem dbscope solves, in one command: the festival suite twice under ``-n 2``.

    python examples/festival/demo.py            # from anywhere; about 20-30 seconds

(a) The old setup (legacy/conftest.py): ONE shared SQLite file,
    ``data/test-integration.db``, for every test of both xdist workers; the schema is
    created by the first test file that finds it missing, and each test starts by
    emptying the tables and re-inserting the seed data.
(b) The same test files under dbscope: every test gets its own in-memory database,
    cloned from a template migrated once; the app finds it through DATABASE_URL.

It prints both tallies and times, and the kinds of errors seen in (a). Exit status 0
when (a) failed and (b) passed, which is the point.

Options: ``--workers N`` (default 2), ``--keep`` (keep the junit XML files in .demo/).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / ".demo"

# The error kinds of a shared database, most specific first.
KINDS = [
    (re.compile(r"database is locked|database table is locked|SQLITE_BUSY"), "database is locked"),
    (re.compile(r"UNIQUE constraint failed: ([\w.]+)"), "UNIQUE constraint failed: {0}"),
    (re.compile(r"table (\w+) already exists"), "table {0} already exists"),
    (re.compile(r"no such table: (\w+)"), "no such table: {0}"),
    (re.compile(r"FOREIGN KEY constraint failed"), "FOREIGN KEY constraint failed"),
    (re.compile(r"CHECK constraint failed"), "CHECK constraint failed"),
    (re.compile(r"disk I/O error|database disk image is malformed"), "database file damaged"),
    (re.compile(r"ClientClosedError|is closed"), "client used after close"),
]


@dataclass
class Run:
    label: str
    seconds: float
    exit_code: int
    summary: str
    test_seconds: float = 0.0
    tally: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    report: list[str] = field(default_factory=list)


def classify(message: str) -> str:
    for pattern, label in KINDS:
        match = pattern.search(message)
        if match:
            return label.format(*match.groups())
    first = next((line.strip() for line in message.splitlines() if line.strip()), "unknown error")
    if first.startswith(("assert", "AssertionError")):
        return "wrong data (another test's rows, or stock it already sold): AssertionError"
    return first[:100]


def run(label: str, args: list[str], junit: Path, timeout: float) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBSCOPE_", "PYTEST_"))}
    env.pop("DATABASE_URL", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:benchmark",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *args,
    ]
    print(f"\n$ {' '.join(['python', *command[1:]])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(command, check=False, cwd=HERE, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    lines = proc.stdout.strip().splitlines()
    summary = next(
        (line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed|error)", line)),
        "(no summary line)",
    )
    result = Run(label, seconds, proc.returncode, summary)
    in_report = False
    for line in lines:
        if "dbscope isolation report" in line:
            in_report = True
            continue
        if in_report:
            if line.startswith("=") or line == summary or not line.strip():
                break
            result.report.append(line)
    if not junit.exists():
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return result
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        result.test_seconds += float(case.get("time") or 0)
        outcomes = [child for child in case if child.tag in ("failure", "error", "skipped")]
        if not outcomes:
            result.tally["passed"] += 1
        for child in outcomes:
            if child.tag == "skipped":
                result.tally["xfailed" if child.get("type") == "pytest.xfail" else "skipped"] += 1
                continue
            result.tally["failed" if child.tag == "failure" else "errors"] += 1
            result.kinds[classify(f"{child.get('message', '')}\n{child.text or ''}")].append(name)
    return result


def show(result: Run) -> None:
    t = result.tally
    print(
        f"  {result.label}: {t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
        f"{t['skipped']} skipped, {t['xfailed']} xfailed (exit {result.exit_code})"
    )
    print(
        f"    time: {result.seconds:.1f} s in all, {result.test_seconds:.1f} s in the tests themselves (both workers)"
    )
    print(f"    pytest said: {result.summary}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the junit XML files in .demo/")
    parser.add_argument("--timeout", type=float, default=100, help="seconds each run may take (default 100)")
    options = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    shutil.rmtree(HERE / "data", ignore_errors=True)  # a fresh shared file, as on a CI machine
    xdist = ["-n", options.workers]

    print("The festival suite, twice, with", options.workers, "pytest-xdist workers.")
    legacy = run(
        "(a) one shared SQLite file",
        ["-c", "legacy/pytest.ini", "--rootdir", ".", *xdist],
        OUT / "legacy.xml",
        options.timeout,
    )
    isolated = run("(b) dbscope", [*xdist], OUT / "dbscope.xml", options.timeout)

    print("\nResults")
    show(legacy)
    show(isolated)
    print("\nWhat went wrong in (a), by kind (tests affected):")
    for kind, tests in sorted(legacy.kinds.items(), key=lambda kv: -len(kv[1])):
        examples = ", ".join(sorted(set(tests))[:2])
        print(f"  {len(tests):3d}  {kind}\n         e.g. {examples}")
    if not legacy.kinds:
        print("  nothing failed this time (the races are timing-dependent; run it again)")
    if isolated.kinds:
        print("\nUnexpected failures in (b):")
        for kind, tests in isolated.kinds.items():
            print(f"  {len(tests):3d}  {kind}: {', '.join(tests[:3])}")
    if isolated.report:
        print("\n(b)'s dbscope isolation report:")
        for line in isolated.report:
            print("  " + line)
    print(
        f"\nTime: (a) {legacy.seconds:.1f} s, (b) {isolated.seconds:.1f} s in all "
        f"(most of it pytest-xdist starting its workers); in the tests themselves "
        f"(a) {legacy.test_seconds:.1f} s, (b) {isolated.test_seconds:.1f} s"
    )
    if not options.keep:
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.rmtree(HERE / "data", ignore_errors=True)
    ok = bool(legacy.kinds) and isolated.exit_code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
