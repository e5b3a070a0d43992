"""`view`: the model in a browser — a local page (server.py) or one self-contained file (html.py),
both drawn from the documents the CLI prints with --json (documents.py) by the page in static/."""

from __future__ import annotations

from .documents import build_documents
from .html import export_html, write_html
from .server import ViewServer

__all__ = ["ViewServer", "build_documents", "export_html", "write_html"]
