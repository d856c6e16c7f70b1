"""The HTML report: self-contained, well-formed, escaped, scalable, and it renders in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbscope.html_report import AMBER, BLUE, RED, TEAL, nice_ticks, render
from dbscope.report import MB, Record, build_report

if TYPE_CHECKING:
    from conftest import MakeProject

METRICS = {
    "scopes_created": 2,
    "scopes_destroyed": 2,
    "connections_created": 2,
    "connections_closed": 2,
    "connections_leaked": 1,
    "average_cleanup_ms": 0.2,
    "emergency_cleanups": 0,
    "modules_cleared": 0,
}


def make_report(n: int = 40, *, workers: tuple[str, ...] = ("gw0", "gw1"), **extra: Any) -> dict[str, Any]:
    tests = []
    for i in range(n):
        rec = Record(
            f"tests/test_app.py::test_case[{i}]",
            workers[i % len(workers)],
            started_at=1000.0 + i,
            duration_ms=1.0 + (i % 7) * 0.3,
            setup_ms=0.3,
            teardown_ms=0.1,
            scopes=1,
            rss_bytes=(60 + i // 10) * MB,
        )
        if i == 5:
            rec.connections_leaked = 1
        if i == 9:
            rec.duration_ms = 6500.0
        if i == 12:
            rec.outcome = "failed"
        if i == 20:
            rec.scope_leaked = True
            rec.warn("scope_leak", f"scope leak in {rec.nodeid}: scope test_1_abcd still active")
        rec.check(slow_test_s=5, memory_growth_mb=50)
        tests.append(rec.to_dict())
    return build_report(tests, METRICS, memory_source="rss", workers=workers, **extra)


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)


def test_the_page_is_self_contained() -> None:
    page = render(make_report())
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for fetch in ("<script", "<link", "src=", "@import", "<iframe", "<img"):
        assert fetch not in lowered, fetch
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}  # a namespace, not a fetch
    assert re.findall(r"url\(([^)]*)\)", page) == ["#round"]


def test_every_chart_is_well_formed_svg() -> None:
    page = render(make_report())
    charts = svgs(page)
    assert len(charts) == 4  # time split, durations, overhead, memory
    for chart in charts:
        ET.fromstring(chart)  # raises on anything a strict SVG parser would reject
    titles = re.findall(r'aria-label="([^"]+)"', page)
    assert titles == [
        "where the time went",
        "duration of each test",
        "dbscope overhead per test",
        "memory over the run",
    ]


def test_leaks_slow_tests_and_failures_are_highlighted() -> None:
    page = render(make_report())
    assert (
        "Needs attention: 1 failing test(s); 1 test(s) leaked connections; 1 test(s) leaked a scope; 1 slow test(s)."
        in page
    )
    attention = page.split("Tests that need attention", 1)[1].split("</section>", 1)[0]
    for badge in ("CONNECTION LEAK", "SCOPE LEAK", "SLOW", "FAILED"):
        assert f">{badge}</span>" in attention
    assert "connection leak in tests/test_app.py::test_case[5]: 1 connection(s) left open" in attention
    assert 'fill="#dc3d43"' in svgs(page)[1]  # the leaky and failed tests' points are red
    assert "slow: 5.00 s" in page  # the threshold line


def test_a_clean_run_says_so() -> None:
    rec = Record(
        "t.py::test_ok", started_at=1.0, duration_ms=1.0, setup_ms=0.2, teardown_ms=0.1, scopes=1, rss_bytes=50 * MB
    )
    page = render(build_report([rec.to_dict()], METRICS, memory_source="rss"))
    assert "All clean: 1 test(s), no leaks, no slow tests, dbscope added 0.300 ms per test." in page
    assert "Nothing to look at: no failures, leaks, slow tests or memory growth." in page


def test_test_names_are_escaped() -> None:
    rec = Record('t.py::test_x[<script>alert("x")</script>&]', started_at=1.0, duration_ms=1.0, connections_leaked=1)
    rec.check(slow_test_s=5, memory_growth_mb=50)
    page = render(build_report([rec.to_dict()], METRICS))
    assert "<script>" not in page
    assert "t.py::test_x[&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;]" in page
    for chart in svgs(page):
        ET.fromstring(chart)


def test_an_empty_run_renders_without_charts() -> None:
    page = render(build_report([], {}))
    assert "No test ran, so there is nothing to chart." in page and not svgs(page)


def test_a_baseline_comparison_is_shown() -> None:
    report = make_report()
    report["baseline"] = {
        "path": "base.json",
        "notes": ["the baseline has 10 test(s), this run 40"],
        "comparison": [
            {
                "metric": "max_duration_ms",
                "label": "max test duration",
                "unit": "ms",
                "baseline": 100.0,
                "current": 6500.0,
                "threshold": 150.0,
                "factor": 1.5,
                "change_percent": 6400.0,
                "status": "failure",
                "note": "",
            },
        ],
    }
    page = render(report)
    section = page.split("Compared with the baseline", 1)[1]
    assert "max test duration" in section and "+6400.0%" in section and 'class="badge b-failure">failure<' in section
    assert "1 performance regression(s)" in page


def test_a_big_run_stays_small() -> None:
    page = render(make_report(20_000, workers=("gw0", "gw1", "gw2", "gw3")))
    assert len(page) < 4_000_000, len(page)
    assert page.count("<circle") < 200  # ordinary tests are drawn as per-column ranges, flagged ones as points
    assert "the first 2000; 18000 more in the JSON report" in page
    assert "each bar is the average of 84 consecutive tests" in page
    for chart in svgs(page):
        ET.fromstring(chart)


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [(0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0, 13.2, [0, 5, 10, 15]), (52, 91, [50, 60, 70, 80, 90, 100])],
)
def test_axis_ticks_are_round_numbers(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == ticks


# -- in a real browser ------------------------------------------------------------------


def find_browser() -> str | None:
    explicit = os.environ.get("DBSCOPE_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB(A) PNG, with zlib and the five PNG filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour_type in (2, 6), header
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prior = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prior, strict=True))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prior[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prior[i], (prior[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rgb = bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
        rows.append(rgb)
        prior = line
    return width, height, rows


def test_the_page_renders_in_headless_chromium(project: MakeProject, tmp_path: Path) -> None:
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium: run .ci/install-chromium.sh (or set DBSCOPE_CHROMIUM)")
    pytester = project(ini="dbscope_slow_test_s = 0.03\n")
    pytester.makepyfile(
        test_app="""
        import os, time, pytest, sqlalchemy as sa

        KEPT = []

        @pytest.mark.parametrize("n", range(30))
        def test_case(db, n):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")

        def test_slow(db):
            time.sleep(0.05)  # slow on purpose: over dbscope_slow_test_s

        def test_leaky(db):
            KEPT.append(sa.create_engine(os.environ["DATABASE_URL"]).connect())

        def test_fails(db):
            assert 0
        """
    )
    pytester.runpytest("--dbscope-html=report.html").assert_outcomes(passed=32, failed=1)
    page = pytester.path / "report.html"
    shot = tmp_path / "report.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 40_000, f"{len(data)} bytes: a blank page compresses to a few kB"
    width, height, rows = decode_png(data)
    assert (width, height) == (1200, 1600)
    counts: dict[bytes, int] = {}
    for row in rows:
        for i in range(0, len(row), 3):
            pixel = row[i : i + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    assert len(counts) > 300, f"only {len(counts)} distinct colours: the page did not render"
    assert max(counts.values()) < 0.9 * width * height, "one colour covers the page"
    for name, colour in (("blue", BLUE), ("teal", TEAL), ("red", RED), ("amber", AMBER)):
        pixels = counts.get(bytes.fromhex(colour[1:]), 0)
        assert pixels > 40, f"{name} ({colour}): {pixels} pixels; the charts did not render"
