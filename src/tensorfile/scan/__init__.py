"""`tensorfile scan`: what could run code when a model file is loaded, found without loading it.

`scan(paths)` returns a `ScanReport`; `scan_file(path)` one `FileResult`. Imports are lazy so
that the pickle rules can be used without pulling in every format's checker.
"""

from __future__ import annotations

from typing import Any

from .findings import SEVERITIES, FileResult, Finding, ScanReport

__all__ = ["SEVERITIES", "FileResult", "Finding", "ScanReport", "scan", "scan_file"]


def __getattr__(name: str) -> Any:
    if name in ("scan", "scan_file"):
        from . import scanner

        return getattr(scanner, name)
    raise AttributeError(name)
