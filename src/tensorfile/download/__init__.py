"""`download`: get a model from Hugging Face or ModelScope safely — safetensors first, every file
verified against the hub's hash, scanned before it is placed, in the hub's own cache layout.

    from tensorfile.download import download
    report = download("hf://org/model", local_dir="models/model")
    report.exit_code, report.totals(), report.model["tensor_types"]

Submodules: select (which files), fetch (one file: resume, verify), place (local folder or the
official caches), run (the whole job and its report), report (the terminal view).
"""

from __future__ import annotations

from .run import DownloadReport, FileOutcome, download

__all__ = ["DownloadReport", "FileOutcome", "download"]
