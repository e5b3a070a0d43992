"""`tensorfile scan`: what could run code when a model file is loaded, found without loading it."""

from __future__ import annotations

from .findings import SEVERITIES, FileResult, Finding, ScanReport
from .scanner import scan, scan_file

__all__ = ["SEVERITIES", "FileResult", "Finding", "ScanReport", "scan", "scan_file"]
