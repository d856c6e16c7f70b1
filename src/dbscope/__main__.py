"""``python -m dbscope``: the same as the ``dbscope`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
