"""Setting environment variables for a while, and putting back exactly what was there."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

__all__ = ["change_env", "restore_env"]


def change_env(saved: MutableMapping[str, str | None], changes: Mapping[str, str | None]) -> None:
    """Set (or, for None, delete) variables, remembering in ``saved`` each one's value before the first change."""
    for name, value in changes.items():
        saved.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def restore_env(saved: Mapping[str, str | None]) -> None:
    """Put back the values ``saved`` remembered (deleting the variables that did not exist)."""
    change_env({}, saved)
