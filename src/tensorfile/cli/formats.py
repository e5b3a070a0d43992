"""`tensorfile formats`: the CLI face of tensorfile.catalog (the known formats, as a table or JSON)."""

from __future__ import annotations

import click

from .common import _console, _fail, _print_json, json_option


@click.command()
@json_option
@click.option("--family", default=None, help="Only formats of this family.")
def formats(as_json: bool, family: str | None) -> None:
    """The model formats tensorfile knows: family, extensions, strengths, safety, tools."""
    from .. import catalog

    if family is not None and family not in catalog.FAMILIES:
        raise _fail(f"unknown family {family!r}; choose from {', '.join(catalog.FAMILIES)}")
    rows = [f for f in catalog.FORMATS if family is None or f.family == family]
    if as_json:
        _print_json({"families": catalog.FAMILIES, "formats": [f.to_dict() for f in rows]})
        return
    from ..render import formats_table

    formats_table(_console(), rows)
