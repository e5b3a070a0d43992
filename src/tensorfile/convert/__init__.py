"""`tensorfile convert` and `tensorfile diff`: stream weights between containers, compare two models.

`convert(src, dst, ...)` returns a `ConvertResult`; `diff(a, b, atol=, rtol=)` a `DiffReport`.
Imports are lazy: numpy and the format readers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConvertResult", "DiffReport", "convert", "diff"]


def __getattr__(name: str) -> Any:
    if name in ("convert", "ConvertResult"):
        from . import run

        return getattr(run, name)
    if name in ("diff", "DiffReport"):
        from . import compare

        return getattr(compare, name)
    raise AttributeError(name)
