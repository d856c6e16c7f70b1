"""How a scope's cost grows with schema size, seed size and test count, per backend and strategy.

Schemas are generated in the style of the benchmark schema (benchmarks/schema/): N tables in a
tree of foreign keys (table i references table (i-1)//2), each with a primary key, a foreign
key, two secondary indexes, a default and a CHECK; the seed rows are spread evenly over the
tables. Every scope does a small write and reads it back: it inserts a row into t000 and a
child row into t001, then joins them, so `reset` has something to restore.

Dimensions: tables (10, 30, 100, 300), seed rows in total (0, 1k, 100k) and tests (100,
1,000, 10,000 scopes). The default sweep varies one dimension at a time around the base
point of 30 tables / 1k rows / 1,000 tests; the test-count dimension is one run of up to
10,000 scopes at the base schema, read as the medians of its first 100, 1,000 and 10,000
scopes. A cell stops early when its time budget is spent (at least --min-scopes scopes),
so slow cells (PostgreSQL `reset` on 300 tables) run fewer scopes; every figure is the
median milliseconds a scope and says how many scopes it rests on. `--full` runs the whole
matrix (every tables x rows pair, up to 10,000 scopes each) with no time budget.

A postgresql+proc:// or mysql+proc:// throwaway server is started once per backend and its
URL shared by every manager, as pytest-xdist's workers share it.

Usage: python benchmarks/bench_growth.py [--backends sqlite,pg-proc] [--strategies clone,reset,rollback]
       [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--mysql-url mysql://root@127.0.0.1:3306/]
       [--cell-budget 8] [--long-budget 60] [--full] [--replot] [--json PATH] [--svg PATH]
Backends: sqlite (sqlite://), pg-proc (postgresql+proc://), pg (postgresql://, a running
server), mysql-proc (mysql+proc://), mysql (a running MariaDB).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dbscope import IsolationManager

HERE = Path(__file__).resolve().parent
TABLES = [10, 30, 100, 300]
ROWS = [0, 1000, 100_000]
TESTS = [100, 1000, 10_000]
BASE = {"tables": 30, "rows": 1000, "tests": 1000}
BACKENDS = {
    "sqlite": ("sqlite://", "sqlite"),
    "pg-proc": ("postgresql+proc://", "postgresql"),
    "pg": ("postgresql://", "postgresql"),
    "mysql-proc": ("mysql+proc://", "mariadb"),
    "mysql": ("mysql://", "mariadb"),
}
WRITE_ID = 1_000_000_000
TITLE = "dbscope: ms a scope as the schema, the seed data and the test count grow"


# -- schemas ---------------------------------------------------------------------------------


def table_ddl(dialect: str, i: int) -> list[str]:
    """One table: id, a foreign key to its parent table, a unique code, two indexes, a CHECK."""
    name = f"t{i:03d}"
    parent = f"t{(i - 1) // 2:03d}" if i else None
    if dialect == "sqlite":
        key, ref, text, ts, now, num = "INTEGER PRIMARY KEY", "INTEGER", "TEXT", "TEXT", "CURRENT_TIMESTAMP", "NUMERIC"
    elif dialect == "postgresql":
        key, ref, text, ts, now, num = "BIGINT PRIMARY KEY", "BIGINT", "TEXT", "TIMESTAMPTZ", "now()", "NUMERIC(12,2)"
    else:
        key, ref, text, ts, now = "BIGINT PRIMARY KEY", "BIGINT", "VARCHAR(255)", "DATETIME", "CURRENT_TIMESTAMP"
        num = "DECIMAL(12,2)"
    columns = [
        f"id {key}",
        f"parent_id {ref}" + (f" REFERENCES {parent}(id)" if parent and dialect != "mariadb" else ""),
        f"code {text} NOT NULL UNIQUE",
        f"name {text} NOT NULL",
        f"amount {num} NOT NULL DEFAULT 0 CHECK (amount >= 0)",
        f"status {text} NOT NULL DEFAULT 'active'",
        f"created_at {ts} NOT NULL DEFAULT {now}",
    ]
    if parent and dialect == "mariadb":
        columns.append(f"FOREIGN KEY (parent_id) REFERENCES {parent}(id)")
    tail = " ENGINE=InnoDB" if dialect == "mariadb" else ""
    return [
        f"CREATE TABLE {name} (\n    " + ",\n    ".join(columns) + f"\n){tail};",
        f"CREATE INDEX ix_{name}_parent ON {name} (parent_id);",
        f"CREATE INDEX ix_{name}_status_created ON {name} (status, created_at);",
    ]


def rows_per_table(tables: int, rows: int) -> list[int]:
    return [rows // tables + (1 if i < rows % tables else 0) for i in range(tables)]


def seed_sql(tables: int, rows: int, chunk: int = 500) -> str:
    """Multi-row INSERTs, parents first; the same text reads on every dialect."""
    counts = rows_per_table(tables, rows)
    out = []
    for i, count in enumerate(counts):
        parent_count = counts[(i - 1) // 2] if i else 0
        for start in range(1, count + 1, chunk):
            values = []
            for row in range(start, min(start + chunk, count + 1)):
                parent = str((row - 1) % parent_count + 1) if parent_count else "NULL"
                values.append(f"({row}, {parent}, 'c{i}-{row}', 'row {row} of t{i:03d}', {row % 997}.50)")
            out.append(f"INSERT INTO t{i:03d} (id, parent_id, code, name, amount) VALUES\n" + ",\n".join(values) + ";")
    return "\n".join(out) + "\n"


def write_schema(root: Path, dialect: str, tables: int, rows: int) -> tuple[str, str]:
    """migrations/0001_tables.sql and seed.sql under root; returns (migrations dir, seed file)."""
    directory = root / f"{dialect}-{tables}t-{rows}r"
    (directory / "migrations").mkdir(parents=True, exist_ok=True)
    ddl = [statement for i in range(tables) for statement in table_ddl(dialect, i)]
    (directory / "migrations" / "0001_tables.sql").write_text("\n\n".join(ddl) + "\n")
    (directory / "seed.sql").write_text(seed_sql(tables, rows) if rows else "SELECT 1;\n")
    return str(directory / "migrations"), str(directory / "seed.sql")


# -- one cell --------------------------------------------------------------------------------


def one_test(manager: IsolationManager, n: int) -> None:
    """A representative small test: two inserts, one read back."""
    with manager.scope(f"growth {n}") as scope:
        db = scope.client()
        db.execute("INSERT INTO t000 (id, code, name) VALUES (?, ?, ?)", [WRITE_ID + n, f"w{n}", "written"])
        db.execute(
            "INSERT INTO t001 (id, parent_id, code, name, amount) VALUES (?, ?, ?, ?, ?)",
            [WRITE_ID + n, WRITE_ID + n, f"w{n}", "child", 3],
        )
        found = db.execute(
            "SELECT c.name, p.name FROM t001 c JOIN t000 p ON p.id = c.parent_id WHERE c.id = ?", [WRITE_ID + n]
        )
        if len(list(found)) != 1:
            raise SystemExit(f"scope {n}: the row it wrote did not read back")


def run_cell(
    url: str, strategy: str, schema: tuple[str, str], scopes: int, budget: float, min_scopes: int, warm: int
) -> dict:
    started = time.perf_counter()
    manager = IsolationManager(url, strategy=strategy, migrations=schema[0], seed=schema[1], env_var=[])
    try:
        for n in range(warm):  # templates, pools, prepared statements
            one_test(manager, -1 - n)
        setup_s = time.perf_counter() - started
        times: list[float] = []
        deadline = time.perf_counter() + budget
        for n in range(scopes):
            t0 = time.perf_counter_ns()
            one_test(manager, n)
            times.append((time.perf_counter_ns() - t0) / 1e6)
            if len(times) >= min_scopes and time.perf_counter() > deadline:
                break
    finally:
        manager.close()
    return {"setup_s": round(setup_s, 3), "ms": times}


def summary(times: list[float]) -> dict:
    return {
        "scopes": len(times),
        "median_ms": statistics.median(times),
        "mean_ms": statistics.fmean(times),
        "p90_ms": sorted(times)[int(len(times) * 0.9)] if len(times) >= 10 else max(times),
        "last_tenth_median_ms": statistics.median(times[-max(1, len(times) // 10) :]),
    }


# -- servers ---------------------------------------------------------------------------------


@contextmanager
def backend_url(backend: str, args: argparse.Namespace) -> Iterator[str]:
    if backend == "sqlite":
        yield "sqlite://"
    elif backend == "pg":
        yield args.pg_url
    elif backend == "mysql":
        yield args.mysql_url
    elif backend == "pg-proc":
        from dbscope.backends.pg_cluster import start_cluster

        server = start_cluster("postgresql+proc://")
        try:
            yield server.url
        finally:
            server.stop()
    elif backend == "mysql-proc":
        from dbscope.backends.mariadb_proc import start_server

        server = start_server("mysql+proc://")
        try:
            yield server.url
        finally:
            server.stop()
    else:
        raise SystemExit(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")


# -- the sweep -------------------------------------------------------------------------------


def plan(full: bool) -> list[tuple[int, int, bool]]:
    """(tables, rows, long): long cells run up to 10,000 scopes and give the test-count points."""
    if full:
        return [(t, r, True) for t in TABLES for r in ROWS]
    cells = [(BASE["tables"], BASE["rows"], True)]
    cells += [(t, BASE["rows"], False) for t in TABLES if t != BASE["tables"]]
    cells += [(BASE["tables"], r, False) for r in ROWS if r != BASE["rows"]]
    return cells


def sweep(args: argparse.Namespace) -> dict:
    results: dict = {"cells": []}
    strategies = args.strategies.split(",")
    with tempfile.TemporaryDirectory(prefix="dbscope-growth-") as tmp:
        for backend in args.backends.split(","):
            label, dialect = BACKENDS[backend]
            with ExitStack() as stack:
                url = stack.enter_context(backend_url(backend, args))
                for tables, rows, long in plan(args.full):
                    schema = write_schema(Path(tmp), dialect, tables, rows)
                    for strategy in strategies:
                        scopes = max(TESTS) if long else BASE["tests"]
                        budget = math.inf if args.full else (args.long_budget if long else args.cell_budget)
                        cell = run_cell(url, strategy, schema, scopes, budget, args.min_scopes, args.warm)
                        times = cell.pop("ms")
                        entry = {"backend": label, "strategy": strategy, "tables": tables, "rows": rows}
                        entry |= {"setup_s": cell["setup_s"], "asked": scopes, **summary(times)}
                        if long:
                            # the medians of its first 100, 1,000 and 10,000 scopes; when its budget ended
                            # it short of one, that point rests on the scopes it ran (they say how many)
                            reached = [n for i, n in enumerate(TESTS) if len(times) > ([0, *TESTS])[i]]
                            entry["by_tests"] = {str(n): summary(times[:n]) for n in reached}
                        results["cells"].append(entry)
                        print(
                            f"  {label:<20} {strategy:<9} {tables:>4} tables {rows:>7} rows: "
                            f"{entry['median_ms']:8.3f} ms a scope (median of {entry['scopes']}), "
                            f"setup {cell['setup_s']:.1f} s",
                            flush=True,
                        )
    return results


def points(results: dict) -> dict[str, dict[tuple[str, str], dict[int, dict]]]:
    """dimension -> (backend, strategy) -> value -> summary, around the base point."""
    out: dict[str, dict[tuple[str, str], dict[int, dict]]] = {"tables": {}, "rows": {}, "tests": {}}
    for c in results["cells"]:
        key = (c["backend"], c["strategy"])
        # a long run stands for 1,000 tests by its first 1,000 scopes (all of it when its
        # budget ended it sooner)
        at_base_count = c.get("by_tests", {}).get(str(BASE["tests"]), c)
        if c["rows"] == BASE["rows"]:
            out["tables"].setdefault(key, {})[c["tables"]] = at_base_count
        if c["tables"] == BASE["tables"]:
            out["rows"].setdefault(key, {})[c["rows"]] = at_base_count
        if "by_tests" in c and c["tables"] == BASE["tables"] and c["rows"] == BASE["rows"]:
            for n, s in c["by_tests"].items():
                out["tests"].setdefault(key, {})[int(n)] = s
    return out


def fmt_value(dimension: str, v: int) -> str:
    return f"{v // 1000}k" if v >= 1000 else str(v)


def table_text(pts: dict) -> str:
    """One markdown table per dimension: median ms a scope (ratio to the base point) [scopes]."""
    names = {"tables": "schema size (tables; 1k rows, 1,000 tests)", "rows": "seed size (rows; 30 tables, 1,000 tests)"}
    names["tests"] = "test count (scopes; 30 tables, 1k rows)"
    lines = []
    for dimension, by_key in pts.items():
        values = sorted({v for by in by_key.values() for v in by})
        rows = [["backend", "strategy", *(fmt_value(dimension, v) for v in values)]]
        for (backend, strategy), by in sorted(by_key.items()):
            base = by.get(BASE[dimension])
            row = [backend, strategy]
            for v in values:
                s = by.get(v)
                if not s:
                    row.append("-")
                    continue
                ratio = f"x{s['median_ms'] / base['median_ms']:.2f}" if base else "?"
                row.append(f"{s['median_ms']:.2f} ({ratio}) [{s['scopes']}]")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append(f"\n{names[dimension]}: median ms a scope (ratio to the base point) [scopes]\n")
        for n, r in enumerate(rows):
            lines.append(
                "| "
                + " | ".join(
                    c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
                + " |"
            )
            if n == 0:
                lines.append(
                    "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
                )
    return "\n".join(lines)


# -- the chart -------------------------------------------------------------------------------

COLORS = {"clone": "#1f77b4", "reset": "#d62728", "rollback": "#2ca02c", "worker": "#9467bd"}
DASHES = ["", "6,3", "2,3", "8,3,2,3", "1,2"]


def svg_chart(pts: dict, title: str) -> str:
    panel_w, panel_h, left, top, bottom = 330, 300, 56, 48, 44
    plot_w, plot_h = panel_w - left - 16, panel_h - top - bottom
    width, height = panel_w * 3 + 10, panel_h + 90
    all_ms = [s["median_ms"] for by_key in pts.values() for by in by_key.values() for s in by.values()]
    lo = 10 ** math.floor(math.log10(max(min(all_ms), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(all_ms)))
    backends = sorted({k[0] for by_key in pts.values() for k in by_key})
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
    ]
    labels = {"tables": "tables (1k rows, 1,000 tests)", "rows": "seed rows (30 tables, 1,000 tests)"}
    labels["tests"] = "tests (30 tables, 1k rows)"
    for p, (dimension, by_key) in enumerate(pts.items()):
        x0, y0 = p * panel_w + left, top
        values = sorted({v for by in by_key.values() for v in by})
        # log x; 0 seed rows sit one decade left of the smallest other value
        shown = {v: (v if v > 0 else min(x for x in values if x > 0) / 10) for v in values}
        xlo, xhi = math.log10(min(shown.values())), math.log10(max(shown.values()))

        def xs(value: float, xlo: float = xlo, xhi: float = xhi, x0: int = x0) -> float:
            return x0 + (math.log10(value) - xlo) / ((xhi - xlo) or 1) * plot_w

        def x(v: int, shown: dict = shown, xs: object = xs) -> float:
            return xs(shown[v])

        def y(ms: float, y0: int = y0) -> float:
            return y0 + plot_h - (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

        out.append(f'<rect x="{x0}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
        out.append(
            f'<text x="{x0 + plot_w / 2}" y="{y0 + plot_h + 34}" text-anchor="middle">{labels[dimension]}</text>'
        )
        for v in values:
            out.append(f'<line x1="{x(v):.1f}" y1="{y0}" x2="{x(v):.1f}" y2="{y0 + plot_h}" stroke="#eee"/>')
            out.append(
                f'<text x="{x(v):.1f}" y="{y0 + plot_h + 15}" text-anchor="middle">{fmt_value(dimension, v)}</text>'
            )
        decade = lo
        while decade <= hi * 1.0001:
            out.append(f'<line x1="{x0}" y1="{y(decade):.1f}" x2="{x0 + plot_w}" y2="{y(decade):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 5}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:g}</text>')
            decade *= 10
        if p == 0:
            out.append(
                f'<text x="14" y="{y0 + plot_h / 2}" text-anchor="middle" '
                f'transform="rotate(-90 14 {y0 + plot_h / 2})">ms a scope (median, log scale)</text>'
            )

        def at(v: int, s: dict, dimension: str = dimension, x: object = x, xs: object = xs) -> float:
            """A test-count point sits at the scopes it rests on (fewer when its budget ran out)."""
            return xs(s["scopes"]) if dimension == "tests" else x(v)

        for (backend, strategy), by in sorted(by_key.items()):
            path = " ".join(f"{at(v, s):.1f},{y(s['median_ms']):.1f}" for v, s in sorted(by.items()))
            dash = DASHES[backends.index(backend) % len(DASHES)]
            color = COLORS.get(strategy, "#333")
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + "/>"
            )
            for v, s in sorted(by.items()):
                out.append(f'<circle cx="{at(v, s):.1f}" cy="{y(s["median_ms"]):.1f}" r="2.5" fill="{color}"/>')
    # legend
    lx, ly = left, panel_h + 40
    keys = sorted({k for by_key in pts.values() for k in by_key})
    for i, (backend, strategy) in enumerate(keys):
        cx, cy = lx + (i % 3) * 300, ly + (i // 3) * 16
        dash = DASHES[backends.index(backend) % len(DASHES)]
        out.append(
            f'<line x1="{cx}" y1="{cy}" x2="{cx + 28}" y2="{cy}" stroke="{COLORS.get(strategy, "#333")}" '
            f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        out.append(f'<text x="{cx + 34}" y="{cy + 4}">{backend} {strategy}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,pg-proc", help=f"comma-separated: {', '.join(BACKENDS)}")
    parser.add_argument("--strategies", default="clone,reset,rollback")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306/")
    parser.add_argument("--cell-budget", type=float, default=8.0, help="seconds a cell of the default sweep may run")
    parser.add_argument("--long-budget", type=float, default=60.0, help="seconds the test-count run may take")
    parser.add_argument("--min-scopes", type=int, default=10, help="scopes a cell runs even over its budget")
    parser.add_argument("--warm", type=int, default=5, help="untimed scopes first (templates, pools)")
    parser.add_argument("--full", action="store_true", help="every tables x rows pair, 10,000 scopes each, no budget")
    parser.add_argument("--replot", action="store_true", help="print the table and draw the chart from --json")
    parser.add_argument("--json", default=str(HERE / "results" / "growth.json"))
    parser.add_argument("--svg", default=str(HERE / "results" / "growth.svg"))
    args = parser.parse_args()

    if args.replot:  # the table and the chart again, from a run's JSON
        results = json.loads(Path(args.json).read_text())
        pts = points(results)
        print(table_text(pts))
        print(f"\n{results['mode']}.\n{results['machine']}")
        Path(args.svg).write_text(svg_chart(pts, TITLE))
        print(f"wrote {args.svg}")
        return
    started = time.perf_counter()
    load_before = os.getloadavg()
    mode = (
        "full matrix, no time budget"
        if args.full
        else (
            f"one dimension at a time around 30 tables / 1k rows / 1,000 tests; cells stop after "
            f"{args.cell_budget:g} s (the test-count run after {args.long_budget:g} s), "
            f"at least {args.min_scopes} scopes"
        )
    )
    print(f"bench_growth: {mode}; per-scope medians", flush=True)
    results = sweep(args)
    pts = points(results)
    elapsed = time.perf_counter() - started
    machine = f"{platform.node()}: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    machine += f", Python {platform.python_version()}"
    text = table_text(pts)
    print(text)
    print(f"\n{mode}. A [scopes] below the asked count means the cell's budget ran out first.")
    print(f"{machine}; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; {elapsed:.0f} s")
    results |= {
        "mode": mode,
        "base": BASE,
        "machine": machine,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "seconds": round(elapsed, 1),
        "table": text,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    Path(args.svg).write_text(svg_chart(pts, TITLE))
    print(f"wrote {args.json} and {args.svg}")


if __name__ == "__main__":
    main()
