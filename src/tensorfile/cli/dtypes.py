"""`tensorfile dtypes`: the CLI face of tensorfile.dtypes (the tensor types, or one line explained)."""

from __future__ import annotations

import click

from .common import _console, _fail, _print_json, json_option


@click.command()
@json_option
@click.option("--explain", default=None, help='Explain a tensor-type line like "BF16·I32·F32".')
def dtypes(as_json: bool, explain: str | None) -> None:
    """The tensor types (F32, BF16, F8, I64…, ggml quant types) with bits, block sizes and meaning."""
    from .. import dtypes as dt

    if explain is not None:
        try:
            parts = dt.explain_composite(explain)
        except (KeyError, ValueError) as exc:
            raise _fail(f"cannot explain {explain!r}: {exc}") from None
        if as_json:
            _print_json({"line": explain, "parts": parts})
            return
        from ..render import explain_table

        explain_table(_console(), explain, parts)
        return
    if as_json:
        _print_json({"dtypes": [d.to_dict() for d in dt.DTYPES]})
        return
    from ..render import dtypes_table

    dtypes_table(_console(), dt.DTYPES)
