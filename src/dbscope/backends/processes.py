"""Whether a process on this machine still runs: how sweeps tell a dead run's leftovers.

Stdlib only, and importing nothing of dbscope: run as the cluster's watchdog
(``python -I -S pg_cluster.py``), pg_cluster.py loads this file by its path.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive", "proc_stat"]


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (None without /proc or process)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return False
    stat = proc_stat(pid)
    return not (stat and stat[0] in ("Z", "X"))
