"""The report's pytest side: per-test figures, one combined summary under xdist.

Registered by plugin.py as its own plugin object, so the plugin stays thin.
"""

from __future__ import annotations

from typing import Any

import pytest

from .manager import IsolationManager
from .scope import Scope

__all__ = ["ReportPlugin"]


class ReportPlugin:
    """Collects what each test's scope left behind and prints the isolation report."""

    def __init__(self, config: pytest.Config, manager: IsolationManager) -> None:
        self.config = config
        self.manager = manager
        self.leaks: list[tuple[str, int]] = []
        self.worker_parts: list[dict[str, Any]] = []
        manager.scope_listeners.append(self._scope_ended)

    def _scope_ended(self, scope: Scope) -> None:
        if scope.leaked_connections:
            self.leaks.append((scope.test_name, scope.leaked_connections))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["dbscope"] = {"metrics": self.manager.metrics, "leaks": self.leaks}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; keep its figures for the combined report."""
        output = getattr(node, "workeroutput", {}) or {}
        if "dbscope" in output:
            self.worker_parts.append(output["dbscope"])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        if self.worker_parts:
            metrics = merge_metrics([p["metrics"] for p in self.worker_parts])
            leaks = [(str(n), int(c)) for p in self.worker_parts for n, c in p["leaks"]]
        else:
            metrics, leaks = self.manager.metrics, self.leaks
        if not metrics.get("scopes_created"):
            return
        terminalreporter.write_sep("=", "dbscope isolation report")
        for line in summary_lines(metrics, leaks):
            terminalreporter.write_line(line)


def summary_lines(metrics: dict[str, Any], leaks: list[tuple[str, int]]) -> list[str]:
    lines = [
        f"scopes created: {metrics['scopes_created']}, destroyed: {metrics['scopes_destroyed']}",
        f"connections created: {metrics['connections_created']}, closed: {metrics['connections_closed']}, "
        f"leaked: {metrics['connections_leaked']}",
        f"average cleanup: {metrics['average_cleanup_ms']:.3f} ms, emergency cleanups: "
        f"{metrics['emergency_cleanups']}, modules cleared: {metrics['modules_cleared']}",
    ]
    lines += [f"connection leak in {nodeid}: {count} connection(s) left open" for nodeid, count in leaks]
    return lines


def merge_metrics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the workers' metrics; the average cleanup is weighted by scopes destroyed."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    destroyed = total.get("scopes_destroyed", 0)
    if destroyed:
        weighted = sum(p["average_cleanup_ms"] * p["scopes_destroyed"] for p in parts)
        total["average_cleanup_ms"] = round(weighted / destroyed, 3)
    return total
