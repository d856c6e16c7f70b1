"""What the reliability tests measured: the ``figures`` fixture, and ``tests/reliability/figures.json``.

A test records its figures with ``figures.record(rss_growth_mb=0.01)``. At the end of the
run every figure goes to ``figures.json`` beside this module (docs/reliability.md quotes
them and says what each one means), and the terminal gets one line saying where they are,
not a table of them: a figure printed without its meaning reads like a warning.

Under xdist each worker keeps its own figures and sends them to the controller in
``workeroutput`` when its session ends; the controller writes the one file. tests/conftest.py
loads this module as a plugin, so its hooks run in the controller too (which imports no
conftest below tests/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIGURES_PATH = Path(__file__).with_name("figures.json")
#: the figures of this process's tests: test node id -> figure name -> value
FIGURES_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()
#: the key of a worker's figures in xdist's ``workeroutput``
WORKER_OUTPUT_KEY = "dbscope_reliability_figures"


class Figures:
    """Records named figures for one test, e.g. ``figures.record(rss_before_mb=41.2)``."""

    def __init__(self, nodeid: str, recorded: dict[str, dict[str, Any]]) -> None:
        self._nodeid = nodeid
        self._recorded = recorded

    def record(self, **values: Any) -> None:
        self._recorded.setdefault(self._nodeid, {}).update(values)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Where a reliability test writes the figures it measured."""
    return Figures(request.node.nodeid, request.config.stash[FIGURES_KEY])


class FiguresFromWorkers:
    """The xdist controller's part: each worker's figures, when the worker finishes."""

    def __init__(self, recorded: dict[str, dict[str, Any]]) -> None:
        self._recorded = recorded

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self._recorded.update(getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, {}))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES_KEY] = {}
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(FiguresFromWorkers(config.stash[FIGURES_KEY]), "reliability-figures-xdist")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: its figures go to the controller
        session.config.workeroutput[WORKER_OUTPUT_KEY] = session.config.stash[FIGURES_KEY]  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorded = config.stash[FIGURES_KEY]
    if hasattr(config, "workerinput") or not recorded:
        return
    FIGURES_PATH.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    shown = FIGURES_PATH.relative_to(Path.cwd()) if FIGURES_PATH.is_relative_to(Path.cwd()) else FIGURES_PATH
    terminalreporter.write_line(
        f"reliability figures: what {len(recorded)} test(s) measured is in {shown} "
        "(docs/reliability.md says what each figure means)"
    )
