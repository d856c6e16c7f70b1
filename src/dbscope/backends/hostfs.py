"""Which file system holds a path: tmpfs or a disk decides how fast clones stay.

Stdlib only, so that anything may import it. The one copy: ``dbscope doctor`` asks it
about database files and a server's data directory, the throwaway cluster about its own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MEMORY_FILESYSTEMS", "filesystem_type"]

#: File systems that live in memory: clones on them stay fast.
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def filesystem_type(path: str | os.PathLike[str], *, mounts: str = "/proc/mounts") -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``tmpfs``), from /proc/mounts; None when unknown.

    The longest mount point that contains the path wins; of two mounts on the same point
    the later one, which hides the earlier (``>=``).
    """
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, fstype = "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, parts[2]
    return fstype
