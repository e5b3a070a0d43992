"""The page's files as shipped in the package (static/), and the two ways its HTML is put together:
linking its assets (served by the local server) or inlining them (the single-file --html export)."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


# app.js is kept as parts of one script (one closure, so they share its names): static/app/*.js,
# joined in the order of their names; the page gets the whole script, served or inlined.
SCRIPT_PARTS = "app"


@cache
def read_asset(name: str) -> str:
    static = resources.files("tensorfile.view").joinpath("static")
    if name == "app.js":
        parts = sorted(
            (p for p in static.joinpath(SCRIPT_PARTS).iterdir() if p.name.endswith(".js")),
            key=lambda p: p.name,
        )
        return "".join(p.read_text(encoding="utf-8") for p in parts)
    return static.joinpath(name).read_text(encoding="utf-8")


def page_assets() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, content type) of the files the served page links."""
    return {name: (read_asset(name).encode(), kind) for name, kind in ASSET_TYPES.items()}


def json_for_script(data: Any) -> str:
    """JSON that can sit inside <script type="application/json">: no '<' at all (so no '</script>'
    or '<!--' can end or confuse the element), as \\u003c, which JSON.parse reads back unchanged."""
    text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_SLOT = re.compile(r"<!--(HEAD|DATA|SCRIPT)-->")


def page(head: str, data: str, script: str) -> str:
    """index.html with its three slots filled in one pass (a slot's text is never searched again)."""
    parts = {"HEAD": head, "DATA": data, "SCRIPT": script}
    return _SLOT.sub(lambda m: parts[m.group(1)], read_asset("index.html"))


def page_html(document_names: list[str]) -> str:
    """The served page: assets by URL (relative to the token folder), documents fetched by name."""
    manifest = f'<script type="application/json" id="tf-manifest">{json_for_script(document_names)}</script>'
    return page(
        '<link rel="stylesheet" href="static/app.css">', manifest, '<script src="static/app.js"></script>'
    )
