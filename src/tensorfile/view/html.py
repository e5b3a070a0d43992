"""`tensorfile view --html`: the page as one self-contained file, fit to attach to a ticket or a CI run.

Script, style and every document are inline (fonts are the system's), and the page's own
Content-Security-Policy allows no source beyond them, so opening it fetches nothing.
"""

from __future__ import annotations

import os
from typing import Any

from ..atomic import write_text_atomic
from .assets import json_for_script, page, read_asset

EXPORT_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def inline_script(code: str) -> str:
    lowered = code.lower()
    if any(mark in lowered for mark in ("</script", "<script", "<!--")):  # each would end or escape it
        raise ValueError("the page script must not contain '<script', '</script' or '<!--'")
    return f"<script>{code}</script>"


def export_html(documents: dict[str, dict[str, Any]]) -> str:
    """One page: script, style and every document inline, nothing fetched."""
    head = (
        f'<meta http-equiv="Content-Security-Policy" content="{EXPORT_CSP}">'
        f"<style>{read_asset('app.css')}</style>"
    )
    data = f'<script type="application/json" id="tf-data">{json_for_script(documents)}</script>'
    return page(head, data, inline_script(read_asset("app.js")))


def write_html(path: str | os.PathLike[str], documents: dict[str, dict[str, Any]]) -> None:
    """Write the export atomically: a failed or interrupted run leaves no half file."""
    write_text_atomic(path, export_html(documents))
