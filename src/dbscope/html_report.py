"""The isolation report as one self-contained HTML page.

Everything is inline: the styles, and the charts as SVG drawn here in Python. The page
fetches nothing and runs no script, so it opens the same from a CI artifact, an
e-mail attachment or a file:// URL. Tooltips are SVG ``<title>`` elements.

Charts: where the time went (tests vs dbscope), each test's duration in run order
(failures, leaks and slow tests highlighted), dbscope's own setup and teardown per
test, and memory over the run, one line per worker. Then the tests that need
attention, the slowest tests, the summary and the manager's metrics, dbscope.django's
templates (when the report has them), the baseline comparison, and every test in a
collapsible table.

No pytest here.
"""

from __future__ import annotations

import html
import math
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .report import MB, MEMORY_SOURCES, format_bytes, format_ms

__all__ = ["render"]

# Palette: colour-blind friendly enough, and each colour means one thing on the page.
BLUE = "#3d6fd9"  # a test / dbscope setup
TEAL = "#14a394"  # dbscope teardown
AMBER = "#e89b0c"  # slow
RED = "#dc3d43"  # failed / connection leak
PURPLE = "#8b4fd6"  # scope leak
ORANGE = "#f06d2f"  # memory growth
GREY = "#a7b0bd"
GRID = "#e8ecf2"
INK = "#1d2733"
MUTED = "#66727f"
WORKER_COLOURS = ("#3d6fd9", "#14a394", "#8b4fd6", "#e89b0c", "#dc3d43", "#5b6b7f", "#c2489a", "#2f8fc9")

MAX_POINTS = 2500  # above this, ordinary tests are drawn as per-column ranges
MAX_BARS = 240
MAX_TABLE_ROWS = 2000
MAX_ATTENTION_ROWS = 300

CSS = string.Template("""
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f5f9; color: $ink;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 16px; flex-wrap: wrap;
  margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0; letter-spacing: -0.01em; }
h1 .logo { display: inline-block; width: 14px; height: 14px; border-radius: 4px; margin-right: 10px;
  background: linear-gradient(135deg, $blue, $teal); vertical-align: 1px; }
.sub { color: $muted; font-size: 13px; }
h2 { font-size: 16px; margin: 0 0 4px; }
.caption { color: $muted; font-size: 13px; margin: 0 0 12px; }
.verdict { border-radius: 10px; padding: 12px 16px; margin: 0 0 18px; font-weight: 600; }
.verdict.ok { background: #e6f5ec; color: #1c6b3c; }
.verdict.warn { background: #fdf3e0; color: #8a5a00; }
.verdict.bad { background: #fde8e8; color: #9d1f24; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 18px; }
.card { background: #fff; border-radius: 10px; padding: 12px 14px 12px 16px; border-left: 5px solid $grey;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .06); }
.card.ok { border-left-color: #2e9d5b; } .card.warn { border-left-color: $amber; }
.card.bad { border-left-color: $red; } .card.info { border-left-color: $blue; }
.card .label { color: $muted; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; }
.card .detail { color: $muted; font-size: 12px; margin-top: 2px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
section { background: #fff; border-radius: 12px; padding: 18px 20px; margin-bottom: 18px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .06); }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.two > section { margin-bottom: 0; }
.row-gap { margin-bottom: 18px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: $muted; }
svg .axis-title { fill: $ink; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: $muted; margin-top: 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px;
  vertical-align: -1px; }
.legend i.sq { border-radius: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; color: $muted; font-weight: 600; font-size: 12px; border-bottom: 1px solid #dfe4ec;
  padding: 6px 8px; }
td { padding: 6px 8px; border-bottom: 1px solid #eef1f5; vertical-align: top; }
th.num:first-child { width: 48px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  word-break: break-all; }
tr.bad td { background: #fff6f6; } tr.warn td { background: #fffaf0; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 8px; font-size: 11px; font-weight: 650;
  color: #fff; margin: 0 4px 2px 0; white-space: nowrap; }
.b-failed, .b-error, .b-connection_leak, .b-failure { background: $red; }
.b-scope_leak { background: $purple; } .b-slow_test, .b-warning { background: $amber; }
.b-memory_growth { background: $orange; } .b-passed, .b-ok { background: #2e9d5b; }
.b-skipped, .b-xfailed, .b-xpassed, .b-not-compared { background: $grey; }
.msg { color: $muted; font-size: 12px; margin-top: 2px; }
.bar { display: flex; height: 12px; border-radius: 3px; overflow: hidden; background: $grid; min-width: 160px; }
.bar span { display: block; height: 100%; }
details summary { cursor: pointer; font-weight: 600; }
.kv td:first-child { color: $muted; }
.empty { color: $muted; padding: 24px 0; text-align: center; }
footer { color: $muted; font-size: 12px; text-align: center; margin-top: 8px; }
@media (max-width: 860px) { .cards { grid-template-columns: repeat(2, 1fr); } .two { grid-template-columns: 1fr; } }
""").substitute(
    ink=INK,
    muted=MUTED,
    blue=BLUE,
    teal=TEAL,
    amber=AMBER,
    red=RED,
    purple=PURPLE,
    orange=ORANGE,
    grey=GREY,
    grid=GRID,
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: float) -> str:
    """A coordinate: short, and never exponent notation."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


# -- scales and axes -------------------------------------------------------------------


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _fmt_ms_tick(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 1000:
        return f"{value / 1000:g} s"
    if value >= 1:
        return f"{value:g} ms"
    return f"{value * 1000:g} µs"


class Plot:
    """A rectangle with x/y scales; emits SVG in a fixed 1100-wide coordinate space."""

    width = 1100

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        height: int = 280,
        log_y: bool = False,
        left: int = 90,
        right: int = 24,
        top: int = 16,
        bottom: int = 44,
    ) -> None:
        self.height = height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        self.log_y = log_y
        y0, y1 = y_range
        if log_y:
            y0, y1 = math.log10(y0), math.log10(y1)
        if y1 <= y0:
            y1 = y0 + 1
        self.y0, self.y1 = y0, y1
        self.parts: list[str] = []

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    def sx(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.plot_width

    def sy(self, y: float) -> float:
        if self.log_y:
            y = math.log10(max(y, 10**self.y0))
        y = min(max(y, self.y0), self.y1)
        return self.top + (1 - (y - self.y0) / (self.y1 - self.y0)) * self.plot_height

    def add(self, svg: str) -> None:
        self.parts.append(svg)

    def axes(
        self, *, y_ticks: Sequence[float], y_label: Any, x_ticks: Sequence[float], x_title: str, y_title: str
    ) -> None:
        grid = []
        bottom = self.top + self.plot_height
        for tick in y_ticks:
            y = self.sy(tick)
            grid.append(
                f'<line x1="{self.left}" x2="{_n(self.width - self.right)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}"/>'
            )
            grid.append(f'<text x="{self.left - 8}" y="{_n(y + 4)}" text-anchor="end">{_e(y_label(tick))}</text>')
        for tick in x_ticks:
            x = self.sx(tick)
            grid.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(bottom)}" y2="{_n(bottom + 5)}" stroke="{GREY}"/>')
            grid.append(f'<text x="{_n(x)}" y="{_n(bottom + 19)}" text-anchor="middle">{_e(_fmt_count(tick))}</text>')
        grid.append(
            f'<line x1="{self.left}" x2="{_n(self.width - self.right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" stroke="{GREY}"/>'
        )
        grid.append(
            f'<text class="axis-title" x="{_n(self.left + self.plot_width / 2)}" y="{self.height - 4}" '
            f'text-anchor="middle">{_e(x_title)}</text>'
        )
        grid.append(
            f'<text class="axis-title" transform="translate(14 {_n(self.top + self.plot_height / 2)}) rotate(-90)" '
            f'text-anchor="middle">{_e(y_title)}</text>'
        )
        self.parts.insert(0, "".join(grid))

    def svg(self, label: str) -> str:
        return (
            f'<svg viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{_e(label)}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(self.parts)}</svg>'
        )


def _fmt_count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _x_ticks(n: int) -> list[float]:
    ticks = [t for t in nice_ticks(1, max(n, 2), 8) if 1 <= t <= n]
    if not ticks or ticks[0] != 1:
        ticks.insert(0, 1)
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    exponent = math.floor(math.log10(low))
    while 10**exponent <= high * 1.0001:
        if 10**exponent >= low * 0.9999:
            ticks.append(10.0**exponent)
        exponent += 1
    return ticks


# -- what a test is, for colour -------------------------------------------------------


def _kinds(test: Mapping[str, Any]) -> set[str]:
    return {w["kind"] for w in test["warnings"]}


def _colour(test: Mapping[str, Any]) -> str:
    kinds = _kinds(test)
    if "connection_leak" in kinds or test["outcome"] in ("failed", "error"):
        return RED
    if "scope_leak" in kinds:
        return PURPLE
    if "slow_test" in kinds:
        return AMBER
    if "memory_growth" in kinds:
        return ORANGE
    if test["outcome"] in ("skipped", "xfailed"):
        return GREY
    return BLUE


def _flagged(test: Mapping[str, Any]) -> bool:
    return bool(test["warnings"]) or test["outcome"] in ("failed", "error")


def _tooltip(index: int, test: Mapping[str, Any], extra: str = "") -> str:
    lines = [f"#{index} {test['nodeid']}", f"{test['outcome']}, {format_ms(test['duration_ms'])}"]
    if test["scopes"]:
        lines.append(f"dbscope setup {format_ms(test['setup_ms'])}, teardown {format_ms(test['teardown_ms'])}")
    if extra:
        lines.append(extra)
    lines += [w["message"] for w in test["warnings"]]
    return f"<title>{_e(chr(10).join(lines))}</title>"


# -- charts ----------------------------------------------------------------------------


def duration_chart(tests: Sequence[Mapping[str, Any]], slow_ms: float) -> tuple[str, bool]:
    """The chart, and whether the slow-test threshold is inside it (drawn as a dashed line)."""
    n = len(tests)
    durations = [max(t["duration_ms"], 0.0) for t in tests]
    high = max(durations)
    positive = [d for d in durations if d > 0] or [1.0]
    low = min(positive)
    log_y = high / low > 50
    if log_y:
        y_low = 10 ** math.floor(math.log10(low))
        y_high = 10 ** math.ceil(math.log10(high * 1.05 if slow_ms > high * 10 else max(high, slow_ms) * 1.05))
        plot = Plot((0.5, n + 0.5), (y_low, y_high), log_y=True)
        y_ticks = _log_ticks(y_low, y_high)
    else:
        top = high * 1.1 if high else 1
        if slow_ms <= high * 1.5:
            top = max(top, slow_ms * 1.1)
        y_ticks = nice_ticks(0, top, 5)
        plot = Plot((0.5, n + 0.5), (0, y_ticks[-1]))
    plot.axes(
        y_ticks=y_ticks,
        y_label=_fmt_ms_tick,
        x_ticks=_x_ticks(n),
        x_title="tests, in the order they started",
        y_title="duration",
    )
    radius = 4.0 if n <= 200 else 3.0 if n <= 1000 else 2.2
    ordinary = [(i, t) for i, t in enumerate(tests, 1) if not _flagged(t)]
    if n > MAX_POINTS:
        _ranges(plot, ordinary, "duration_ms")
    else:
        plot.add(
            "".join(
                f'<circle cx="{_n(plot.sx(i))}" cy="{_n(plot.sy(t["duration_ms"]))}" r="{radius}" fill="{_colour(t)}" '
                f'fill-opacity="0.7">{_tooltip(i, t)}</circle>'
                for i, t in ordinary
            )
        )
    flagged = [(i, t) for i, t in enumerate(tests, 1) if _flagged(t)][: MAX_ATTENTION_ROWS * 4]
    plot.add(
        "".join(
            f'<circle cx="{_n(plot.sx(i))}" cy="{_n(plot.sy(t["duration_ms"]))}" r="{radius + 2.5}" fill="{_colour(t)}" '
            f'stroke="#fff" stroke-width="1.5">{_tooltip(i, t)}</circle>'
            for i, t in flagged
        )
    )
    threshold_shown = (10**plot.y0 if log_y else plot.y0) <= slow_ms <= (10**plot.y1 if log_y else plot.y1)
    if threshold_shown:
        y = plot.sy(slow_ms)
        plot.add(
            f'<line x1="{plot.left}" x2="{_n(plot.width - plot.right)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{AMBER}" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/><text x="{_n(plot.width - plot.right - 4)}" y="{_n(y - 6)}" '
            f'text-anchor="end" style="fill:{AMBER};font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:4px">'
            f"slow: {_e(format_ms(slow_ms))}</text>"
        )
    return plot.svg("duration of each test"), threshold_shown


def _ranges(plot: Plot, points: list[tuple[int, Mapping[str, Any]]], key: str) -> None:
    """Many points: one vertical min-max stroke per pixel column instead."""
    columns: dict[int, list[float]] = {}
    for i, test in points:
        column = int(plot.sx(i))
        low_high = columns.setdefault(column, [test[key], test[key]])
        low_high[0] = min(low_high[0], test[key])
        low_high[1] = max(low_high[1], test[key])
    plot.add(
        f'<g stroke="{BLUE}" stroke-opacity="0.55" stroke-width="1.4" stroke-linecap="round">'
        + "".join(
            f'<line x1="{x}.5" x2="{x}.5" y1="{_n(plot.sy(lo) + 1)}" y2="{_n(plot.sy(hi) - 1)}"/>'
            for x, (lo, hi) in sorted(columns.items())
        )
        + "</g>"
    )


def overhead_chart(tests: Sequence[Mapping[str, Any]]) -> str:
    n = len(tests)
    per_bar = max(1, math.ceil(n / MAX_BARS))
    bars = []
    for start in range(0, n, per_bar):
        group = tests[start : start + per_bar]
        setup = sum(t["setup_ms"] for t in group) / len(group)
        teardown = sum(t["teardown_ms"] for t in group) / len(group)
        leaks = [t for t in group if t["connections_leaked"] or t["scope_leaked"]]
        bars.append((start + 1, start + len(group), setup, teardown, group, leaks))
    totals = sorted(b[2] + b[3] for b in bars)
    high = totals[-1] or 1.0
    # One outlier (the first test builds the template) would flatten every other bar:
    # above 2.5x the 95th percentile the axis stops and tall bars are cut and labelled.
    cap = max(totals[int(0.95 * (len(totals) - 1))] * 2.5, 0.001)
    clipped = high > cap * 1.2
    y_ticks = nice_ticks(0, (cap if clipped else high) * 1.12, 5)
    plot = Plot((0.5, n + 0.5), (0, y_ticks[-1]), height=250)
    plot.axes(
        y_ticks=y_ticks,
        y_label=_fmt_ms_tick,
        x_ticks=_x_ticks(n),
        x_title="tests, in the order they started",
        y_title="dbscope time",
    )
    slot = plot.plot_width / len(bars)
    width = max(slot * 0.78, 1.0)
    parts: list[str] = []
    cut: list[tuple[float, float, float]] = []  # (x, width, value) of bars taller than the axis
    for first, last, setup, teardown, group, leaks in bars:
        x = plot.sx((first + last) / 2) - width / 2
        base = plot.sy(0)
        y_setup = plot.sy(setup)
        y_total = plot.sy(setup + teardown)
        if per_bar == 1:
            tip = _tooltip(first, group[0])
        else:
            tip = f"<title>{_e(f'tests #{first}-#{last}: on average setup {format_ms(setup)}, teardown {format_ms(teardown)}')}</title>"
        parts.append(
            f'<g>{tip}<rect x="{_n(x)}" y="{_n(y_setup)}" width="{_n(width)}" height="{_n(max(base - y_setup, 0))}" '
            f'fill="{BLUE}"/><rect x="{_n(x)}" y="{_n(y_total)}" width="{_n(width)}" '
            f'height="{_n(max(y_setup - y_total, 0))}" fill="{TEAL}"/></g>'
        )
        if setup + teardown > y_ticks[-1]:
            cut.append((x, width, setup + teardown))
            parts.append(
                f'<path d="M{_n(x)} {_n(plot.top + 7)} l{_n(width / 2)} -7 l{_n(width / 2)} 7 Z" fill="#fff" opacity="0.9"/>'
            )
        if leaks:
            cx = x + width / 2
            ty = y_total - 6
            colour = RED if any(t["connections_leaked"] for t in leaks) else PURPLE
            parts.append(
                f'<path d="M{_n(cx - 5)} {_n(ty - 8)} L{_n(cx + 5)} {_n(ty - 8)} L{_n(cx)} {_n(ty)} Z" fill="{colour}">'
                f"<title>{_e(chr(10).join(w['message'] for t in leaks for w in t['warnings'] if 'leak' in w['kind']))}</title></path>"
            )
    parts += _cut_labels(cut, plot.top)
    average = sum(t["setup_ms"] + t["teardown_ms"] for t in tests) / n
    y = plot.sy(average)
    parts.append(
        f'<line x1="{plot.left}" x2="{_n(plot.width - plot.right)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{INK}" '
        f'stroke-opacity="0.55" stroke-dasharray="4 4"/><text x="{_n(plot.width - plot.right - 4)}" y="{_n(y - 6)}" '
        f'text-anchor="end" style="fill:{INK};paint-order:stroke;stroke:#fff;stroke-width:3px">'
        f"average {_e(format_ms(average))}</text>"
    )
    plot.add("".join(parts))
    return plot.svg("dbscope overhead per test")


def _cut_labels(cut: list[tuple[float, float, float]], top: float) -> list[str]:
    """One label per run of neighbouring cut bars, right of the run; stacked when labels would overlap."""
    runs: list[list[tuple[float, float, float]]] = []
    for bar in cut:
        if runs and bar[0] - (runs[-1][-1][0] + runs[-1][-1][1]) < 8:
            runs[-1].append(bar)
        else:
            runs.append([bar])
    labels, end, row = [], -1.0, 0
    for run in runs:
        text = ", ".join(format_ms(value) for _, _, value in run[:4]) + (", ..." if len(run) > 4 else "") + " (cut)"
        x = run[-1][0] + run[-1][1] + 5
        row = row + 1 if x < end else 0
        end = x + len(text) * 6.6
        labels.append(
            f'<text x="{_n(x)}" y="{_n(top + 11 + 15 * row)}" '
            f'style="fill:{INK};paint-order:stroke;stroke:#fff;stroke-width:3px">{_e(text)}</text>'
        )
    return labels


def memory_chart(tests: Sequence[Mapping[str, Any]]) -> str:
    n = len(tests)
    by_worker: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, test in enumerate(tests, 1):
        by_worker.setdefault(test["worker"], []).append((i, test))
    values = [t["rss_bytes"] / MB for t in tests]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.12, 0.5)
    y_ticks = nice_ticks(max(low - pad, 0), high + pad, 5)
    plot = Plot((0.5, n + 0.5), (y_ticks[0], y_ticks[-1]), height=250)
    plot.axes(
        y_ticks=y_ticks,
        y_label=lambda v: f"{v:g} MB",
        x_ticks=_x_ticks(n),
        x_title="tests, in the order they started",
        y_title="resident memory",
    )
    parts = []
    for k, (worker, points) in enumerate(sorted(by_worker.items())):
        colour = WORKER_COLOURS[k % len(WORKER_COLOURS)]
        step = max(1, len(points) // 1500)
        shown = points[::step]
        if shown[-1] is not points[-1]:
            shown.append(points[-1])
        path = " ".join(f"{_n(plot.sx(i))},{_n(plot.sy(t['rss_bytes'] / MB))}" for i, t in shown)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round">'
            f"<title>{_e(worker)}</title></polyline>"
        )
        if len(points) == 1:
            i, t = points[0]
            parts.append(
                f'<circle cx="{_n(plot.sx(i))}" cy="{_n(plot.sy(t["rss_bytes"] / MB))}" r="4" fill="{colour}"/>'
            )
    for i, test in enumerate(tests, 1):
        if "memory_growth" in _kinds(test) or test["memory_growth_bytes"] >= 8 * MB:
            colour = ORANGE if "memory_growth" in _kinds(test) else GREY
            parts.append(
                f'<circle cx="{_n(plot.sx(i))}" cy="{_n(plot.sy(test["rss_bytes"] / MB))}" r="5.5" fill="{colour}" '
                f'stroke="#fff" stroke-width="1.5">'
                f"{_tooltip(i, test, 'memory growth ' + format_bytes(test['memory_growth_bytes']))}</circle>"
            )
    plot.add("".join(parts))
    return plot.svg("memory over the run")


def time_split(summary: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> str:
    total = sum(t["duration_ms"] for t in tests)
    setup = sum(t["setup_ms"] for t in tests)
    teardown = sum(t["teardown_ms"] for t in tests)
    rest = max(total - setup - teardown, 0.0)
    whole = setup + teardown + rest or 1.0
    parts = [
        ("your tests and fixtures", rest, "#c9d3e0"),
        ("dbscope setup", setup, BLUE),
        ("dbscope teardown", teardown, TEAL),
    ]
    x = 0.0
    width = 1100
    rects, legend = [], []
    for label, value, colour in parts:
        w = value / whole * width
        rects.append(
            f'<rect x="{_n(x)}" y="0" width="{_n(w)}" height="26" fill="{colour}"><title>{_e(label)}: {_e(format_ms(value))}</title></rect>'
        )
        x += w
        legend.append(
            f'<span><i class="sq" style="background:{colour}"></i>{_e(label)} {_e(format_ms(value))} '
            f"({value / whole * 100:.1f}%)</span>"
        )
    svg = (
        f'<svg viewBox="0 0 {width} 26" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="where the time went">'
        f'<clipPath id="round"><rect width="{width}" height="26" rx="6"/></clipPath><g clip-path="url(#round)">{"".join(rects)}</g></svg>'
    )
    return svg + f'<div class="legend">{"".join(legend)}</div>'


# -- tables ----------------------------------------------------------------------------


def _badges(test: Mapping[str, Any]) -> str:
    badges = []
    if test["outcome"] in ("failed", "error"):
        badges.append(f'<span class="badge b-{test["outcome"]}">{test["outcome"].upper()}</span>')
    names = {
        "connection_leak": "CONNECTION LEAK",
        "scope_leak": "SCOPE LEAK",
        "slow_test": "SLOW",
        "memory_growth": "MEMORY",
    }
    for kind in sorted(_kinds(test)):
        badges.append(f'<span class="badge b-{kind}">{names.get(kind, kind.upper())}</span>')
    return "".join(badges)


def attention_table(tests: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    flagged = [(i, t) for i, t in enumerate(tests, 1) if _flagged(t)]
    for i, test in flagged[:MAX_ATTENTION_ROWS]:
        level = "bad" if _colour(test) in (RED, PURPLE) else "warn"
        messages = "".join(f'<div class="msg">{_e(w["message"])}</div>' for w in test["warnings"])
        rows.append(
            f'<tr class="{level}"><td class="num">{i}</td><td>{_badges(test)}</td><td class="id">{_e(test["nodeid"])}{messages}</td>'
            f'<td class="num">{_e(format_ms(test["duration_ms"]))}</td><td class="num">{test["connections_leaked"]}</td>'
            f'<td class="num">{_e(format_bytes(test["memory_growth_bytes"]))}</td></tr>'
        )
    if not rows:
        return '<p class="empty">Nothing to look at: no failures, leaks, slow tests or memory growth.</p>'
    more = len(flagged) - len(rows)
    note = f'<p class="caption">and {more} more in the JSON report</p>' if more > 0 else ""
    return (
        '<table><thead><tr><th class="num">#</th><th>what</th><th>test</th><th class="num">duration</th>'
        '<th class="num">leaked</th><th class="num">memory</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + note
    )


def slowest_table(tests: Sequence[Mapping[str, Any]], count: int = 10) -> str:
    slowest = sorted(enumerate(tests, 1), key=lambda p: p[1]["duration_ms"], reverse=True)[:count]
    if not slowest:
        return ""
    top = slowest[0][1]["duration_ms"] or 1.0
    rows = []
    for i, test in slowest:
        d = test["duration_ms"]
        setup_w = min(test["setup_ms"], d) / top * 100
        teardown_w = min(test["teardown_ms"], max(d - test["setup_ms"], 0)) / top * 100
        rest_w = max(d / top * 100 - setup_w - teardown_w, 0)
        colour = _colour(test) if _colour(test) != BLUE else "#8fa6cf"
        rows.append(
            f'<tr><td class="num">{i}</td><td class="id">{_e(test["nodeid"])}</td><td><div class="bar">'
            f'<span style="width:{setup_w:.2f}%;background:{BLUE}"></span><span style="width:{teardown_w:.2f}%;background:{TEAL}"></span>'
            f'<span style="width:{rest_w:.2f}%;background:{colour}"></span></div></td>'
            f'<td class="num">{_e(format_ms(d))}</td></tr>'
        )
    return (
        '<table><thead><tr><th class="num">#</th><th>test</th><th style="width:32%">time (dbscope setup, teardown, the rest)</th>'
        '<th class="num">duration</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
    )


def _kv(rows: Iterable[tuple[str, Any]]) -> str:
    return (
        '<table class="kv"><tbody>'
        + "".join(f'<tr><td>{_e(k)}</td><td class="num">{_e(v)}</td></tr>' for k, v in rows)
        + "</tbody></table>"
    )


def summary_table(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    outcomes = ", ".join(
        f"{s[k]} {k}" for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed") if s.get(k)
    )
    source = MEMORY_SOURCES.get(s["memory_source"], s["memory_source"])
    return _kv(
        [
            ("tests", f"{s['tests']} ({outcomes})" if outcomes else s["tests"]),
            ("failures", s["failures"]),
            ("average duration", format_ms(s["average_duration_ms"])),
            ("max duration", format_ms(s["max_duration_ms"])),
            ("tests that used a scope", s["scoped_tests"]),
            (
                "average dbscope setup / teardown",
                f"{format_ms(s['average_setup_ms'])} / {format_ms(s['average_teardown_ms'])}",
            ),
            ("scope leaks", f"{s['scope_leaks']} ({s['scope_leak_percent']:.2f}%)"),
            (
                "connection leaks",
                f"{s['connection_leaks']} ({s['connection_leak_percent']:.2f}%), {s['connections_leaked']} connection(s)",
            ),
            (f"slow tests (over {s['slow_test_s']:g} s)", s["slow_tests"]),
            ("average memory growth", format_bytes(s["average_memory_growth_bytes"])),
            ("max memory growth", format_bytes(s["max_memory_growth_bytes"])),
            (f"memory growth over {s['memory_growth_mb']:g} MB", s["memory_growth_warnings"]),
            ("memory measured as", source),
            ("workers", ", ".join(s.get("workers", [])) or "-"),
        ]
    )


def metrics_table(metrics: Mapping[str, Any]) -> str:
    labels = {
        "scopes_created": "scopes created",
        "scopes_destroyed": "scopes destroyed",
        "connections_created": "connections created",
        "connections_closed": "connections closed",
        "connections_leaked": "connections leaked",
        "average_cleanup_ms": "average cleanup",
        "emergency_cleanups": "emergency cleanups",
        "modules_cleared": "modules cleared",
        "cleanup_failures": "cleanup failures",
        "pool_hits": "clone pool hits",
        "pool_misses": "clone pool misses",
    }
    rows = []
    for key, value in metrics.items():
        shown = format_ms(value) if key.endswith("_ms") else value
        rows.append((labels.get(key, key.replace("_", " ")), shown))
    return _kv(rows)


def django_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """The report's ``django`` section: one row per alias and worker."""
    body = []
    for row in rows:
        restores = int(row["restores"])
        mean = format_ms(1000 * row["restore_s"] / restores) if restores else "-"
        body.append(
            f"<tr><td>{_e(row.get('worker', 'main'))}</td><td>{_e(row['alias'])}</td><td>{_e(row['engine'])}</td>"
            f'<td>{"built" if row["built"] else "reused"}</td><td class="num">{_e(format_ms(1000 * row["ready_s"]))}'
            f'</td><td class="num">{restores}</td><td class="num">{_e(mean)}</td><td>{_e(row["template"])}</td></tr>'
        )
    return (
        "<table><thead><tr><th>worker</th><th>alias</th><th>engine</th><th>template</th>"
        '<th class="num">ready in</th><th class="num">restores</th><th class="num">mean restore</th>'
        "<th>template's name</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    )


def baseline_table(baseline: Mapping[str, Any]) -> str:
    rows = []
    for row in baseline["comparison"]:
        fmt = format_ms if row["unit"] == "ms" else format_bytes

        def show(value: Any, fmt: Any = fmt) -> str:
            return "-" if value is None else fmt(value)

        change = "-" if row["change_percent"] is None else f"{row['change_percent']:+.1f}%"
        status = row["status"]
        level = {"failure": "bad", "warning": "warn"}.get(status, "")
        rows.append(
            f'<tr class="{level}"><td>{_e(row["label"])}</td><td class="num">{_e(show(row["baseline"]))}</td>'
            f'<td class="num">{_e(show(row["current"]))}</td><td class="num">{_e(show(row["threshold"]))}</td>'
            f'<td class="num">{_e(change)}</td><td><span class="badge b-{_e(status.replace(" ", "-"))}">{_e(status)}</span></td></tr>'
        )
    notes = "".join(f'<p class="caption">{_e(note)}</p>' for note in baseline.get("notes", []))
    return (
        f'<p class="caption">against {_e(baseline.get("path", "the baseline"))}: a warning above 1.2x the average duration '
        "or 1.3x the average memory growth, a failure above 1.5x the slowest test (each also needs an absolute margin)</p>"
        '<table><thead><tr><th>metric</th><th class="num">baseline</th><th class="num">this run</th><th class="num">threshold</th>'
        '<th class="num">change</th><th>status</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>" + notes
    )


def all_tests_table(tests: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for i, test in enumerate(tests[:MAX_TABLE_ROWS], 1):
        rows.append(
            f'<tr><td class="num">{i}</td><td class="id">{_e(test["nodeid"])}</td>'
            f'<td><span class="badge b-{_e(test["outcome"])}">{_e(test["outcome"])}</span></td>'
            f'<td>{_e(test["worker"])}</td><td class="num">{_e(format_ms(test["duration_ms"]))}</td>'
            f'<td class="num">{_e(format_ms(test["setup_ms"]))}</td><td class="num">{_e(format_ms(test["teardown_ms"]))}</td>'
            f'<td class="num">{test["connections_opened"]}/{test["connections_closed"]}/{test["connections_leaked"]}</td>'
            f'<td class="num">{_e(format_bytes(test["memory_growth_bytes"]))}</td></tr>'
        )
    more = len(tests) - MAX_TABLE_ROWS
    note = f'<p class="caption">the first {MAX_TABLE_ROWS}; {more} more in the JSON report</p>' if more > 0 else ""
    return (
        f'<details><summary>All {len(tests)} tests</summary>{note}<table><thead><tr><th class="num">#</th><th>test</th>'
        '<th>outcome</th><th>worker</th><th class="num">duration</th><th class="num">dbscope setup</th>'
        '<th class="num">teardown</th><th class="num">connections opened/closed/leaked</th><th class="num">memory</th>'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></details>"
    )


# -- the page --------------------------------------------------------------------------


def _card(label: str, value: Any, detail: str, level: str) -> str:
    return (
        f'<div class="card {level}"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>'
        f'<div class="detail" title="{_e(detail)}">{_e(detail)}</div></div>'
    )


def _cards(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    n = s["tests"]
    cards = [
        _card("tests", n, f"{s['passed']} passed, {s['skipped']} skipped", "info"),
        _card(
            "failures", s["failures"], f"{s['failed']} failed, {s['error']} errors", "bad" if s["failures"] else "ok"
        ),
        _card(
            "average duration", format_ms(s["average_duration_ms"]), f"max {format_ms(s['max_duration_ms'])}", "info"
        ),
        _card(
            "dbscope overhead",
            format_ms(s["average_overhead_ms"]),
            f"per test: setup {format_ms(s['average_setup_ms'])} + teardown {format_ms(s['average_teardown_ms'])}",
            "info",
        ),
        _card(
            "connection leaks",
            s["connection_leaks"],
            f"{s['connection_leak_percent']:.2f}% of tests, {s['connections_leaked']} connection(s)",
            "bad" if s["connection_leaks"] else "ok",
        ),
        _card(
            "scope leaks",
            s["scope_leaks"],
            f"{s['scope_leak_percent']:.2f}% of tests",
            "bad" if s["scope_leaks"] else "ok",
        ),
        _card("slow tests", s["slow_tests"], f"over {s['slow_test_s']:g} s", "warn" if s["slow_tests"] else "ok"),
        _card(
            "memory growth",
            format_bytes(s["average_memory_growth_bytes"]),
            f"per test; max {format_bytes(s['max_memory_growth_bytes'])}",
            "warn" if s["memory_growth_warnings"] else "ok",
        ),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _verdict(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    problems = []
    if s["failures"]:
        problems.append(f"{s['failures']} failing test(s)")
    if s["connection_leaks"]:
        problems.append(f"{s['connection_leaks']} test(s) leaked connections")
    if s["scope_leaks"]:
        problems.append(f"{s['scope_leaks']} test(s) leaked a scope")
    baseline = report.get("baseline")
    regressions = [r for r in (baseline or {}).get("comparison", []) if r["status"] == "failure"]
    if regressions:
        problems.append(f"{len(regressions)} performance regression(s)")
    notes = []
    if s["slow_tests"]:
        notes.append(f"{s['slow_tests']} slow test(s)")
    if s["memory_growth_warnings"]:
        notes.append(f"{s['memory_growth_warnings']} test(s) grew memory past {s['memory_growth_mb']:g} MB")
    for worker in s.get("missing_workers", []):
        problems.append(f"worker {worker} went down: its tests are missing")
    if problems:
        return f'<div class="verdict bad">Needs attention: {_e("; ".join(problems + notes))}.</div>'
    if notes:
        return f'<div class="verdict warn">No leaks, but {_e("; ".join(notes))}.</div>'
    if not s["tests"]:
        return '<div class="verdict warn">No test ran.</div>'
    return (
        f'<div class="verdict ok">All clean: {s["tests"]} test(s), no leaks, no slow tests, '
        f"dbscope added {_e(format_ms(s['average_overhead_ms']))} per test.</div>"
    )


def render(report: Mapping[str, Any], *, title: str = "dbscope isolation report") -> str:
    """The report as one self-contained HTML page."""
    s, tests = report["summary"], list(report["tests"])
    source = MEMORY_SOURCES.get(s["memory_source"], s["memory_source"])
    settings = report.get("settings", {})
    sub = " · ".join(
        str(part)
        for part in (
            report.get("created_at", ""),
            settings.get("url", ""),
            f"{len(s.get('workers', []))} worker(s)" if s.get("workers") else "",
            f"dbscope {report['dbscope_version']}" if report.get("dbscope_version") else "",
        )
        if part
    )
    body = [
        f'<header><h1><span class="logo"></span>{_e(title)}</h1><div class="sub">{_e(sub)}</div></header>',
        _verdict(report),
        _cards(report),
    ]
    if tests:
        slow_ms = s["slow_test_s"] * 1000
        body.append(
            '<section><h2>Where the time went</h2><p class="caption">The sum of every test\'s setup, call and teardown, '
            "and the part of it that was dbscope's own work.</p>" + time_split(s, tests) + "</section>"
        )
        chart, threshold_shown = duration_chart(tests, slow_ms)
        threshold = (
            f"the dashed line is the slow-test threshold ({format_ms(slow_ms)})"
            if threshold_shown
            else f"no test came near the slow-test threshold ({format_ms(slow_ms)})"
        )
        used = {_colour(t) for t in tests} | {BLUE}
        kinds = [
            (BLUE, "passed"),
            (RED, "failed or leaked a connection"),
            (PURPLE, "leaked a scope"),
            (AMBER, "slow"),
            (ORANGE, "memory growth"),
            (GREY, "skipped"),
        ]
        body.append(
            '<section><h2>Duration of each test</h2><p class="caption">In the order the tests started'
            + (" (log scale)" if _is_log(tests) else "")
            + f"; {_e(threshold)}. Hover a point for the test.</p>"
            + chart
            + _legend([(colour, label) for colour, label in kinds if colour in used])
            + "</section>"
        )
        body.append(
            '<section><h2>dbscope overhead per test</h2><p class="caption">dbscope\'s own work: creating and cloning the '
            "scope (setup; a worker's first scope also builds the template), closing connections, probing for leaks "
            "and dropping the database (teardown)"
            + (
                f"; each bar is the average of {math.ceil(len(tests) / MAX_BARS)} consecutive tests"
                if len(tests) > MAX_BARS
                else ""
            )
            + ". Triangles mark leaks.</p>"
            + overhead_chart(tests)
            + _legend(
                [(BLUE, "setup"), (TEAL, "teardown"), (RED, "connection leak"), (PURPLE, "scope leak")], square=True
            )
            + "</section>"
        )
        if s["memory_source"] != "none":
            body.append(
                f'<section><h2>Memory over the run</h2><p class="caption">{_e(source)} after each test, one line per '
                f"worker process; marked: growth over {s['memory_growth_mb']:g} MB (orange) or over 8 MB (grey).</p>"
                + memory_chart(tests)
                + _worker_legend(tests)
                + "</section>"
            )
        body.append("<section><h2>Tests that need attention</h2>" + attention_table(tests) + "</section>")
        body.append("<section><h2>Slowest tests</h2>" + slowest_table(tests) + "</section>")
    else:
        body.append('<section><p class="empty">No test ran, so there is nothing to chart.</p></section>')
    body.append(
        '<div class="two row-gap"><section><h2>Summary</h2>' + summary_table(report) + "</section>"
        "<section><h2>Isolation manager</h2>" + metrics_table(report["metrics"]) + "</section></div>"
    )
    if report.get("django"):
        body.append(
            '<section><h2>Django test databases</h2><p class="caption">dbscope_django: each alias\'s template, '
            "per worker, how long the worker waited for its databases, and the restores after its transactional "
            "tests. Each Django test's own setup and teardown (the transaction rolled back, or the restore) are in "
            "the charts above.</p>" + django_table(report["django"]) + "</section>"
        )
    if report.get("baseline"):
        body.append("<section><h2>Compared with the baseline</h2>" + baseline_table(report["baseline"]) + "</section>")
    if tests:
        body.append("<section>" + all_tests_table(tests) + "</section>")
    body.append(f"<footer>{_e(title)} · written by dbscope · self-contained, no network needed</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>" + "".join(body) + "</main></body></html>\n"
    )


def _is_log(tests: Sequence[Mapping[str, Any]]) -> bool:
    durations = [float(t["duration_ms"]) for t in tests]
    positive = [d for d in durations if d > 0] or [1.0]
    return max(durations) / min(positive) > 50


def _legend(items: Sequence[tuple[str, str]], *, square: bool = False) -> str:
    cls = ' class="sq"' if square else ""
    return (
        '<div class="legend">'
        + "".join(f'<span><i{cls} style="background:{colour}"></i>{_e(label)}</span>' for colour, label in items)
        + "</div>"
    )


def _worker_legend(tests: Sequence[Mapping[str, Any]]) -> str:
    workers = sorted({t["worker"] for t in tests})
    return _legend([(WORKER_COLOURS[k % len(WORKER_COLOURS)], w) for k, w in enumerate(workers)])
