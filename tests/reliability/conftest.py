"""Reliability suite: load, faults, isolation proofs, bad input, security, fuzzing.

Tests here record what they measured with the ``figures`` fixture; the run ends with
one table of them in the terminal and writes them to ``tests/reliability/figures.json``
(docs/reliability.md quotes these figures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

_FIGURES: dict[str, dict[str, Any]] = {}
FIGURES_PATH = Path(__file__).with_name("figures.json")


class Figures:
    """Records named figures for one test, e.g. ``figures.record(rss_before_mb=41.2)``."""

    def __init__(self, nodeid: str) -> None:
        self._nodeid = nodeid

    def record(self, **values: Any) -> None:
        _FIGURES.setdefault(self._nodeid, {}).update(values)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Where a reliability test writes the figures it measured."""
    return Figures(request.node.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("dbscope reliability figures")
    for nodeid, values in _FIGURES.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {shown}")
    FIGURES_PATH.write_text(json.dumps(_FIGURES, indent=2, sort_keys=True) + "\n")
