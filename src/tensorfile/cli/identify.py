"""`tensorfile identify`: the CLI face of tensorfile.identification (options, table, exit code)."""

from __future__ import annotations

import sys

import click

from ..errors import TensorfileError
from .common import _console, _print_json, _with_http, json_option


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Look inside folders that are not themselves a model.")
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence for each answer.")
def identify(paths: tuple[str, ...], recursive: bool, as_json: bool, verbose: bool) -> None:
    """Tell which model format each PATH (file, folder or glob) really is, by content, and whether
    loading it can run code.

    Exit code 0 when every input was identified, 1 when some are unknown, 2 on an error
    (missing or unreadable path).
    """
    from ..identification import expand

    results = []
    errors = []
    for raw, outcome in expand(list(paths), recursive=recursive):
        if isinstance(outcome, TensorfileError):
            errors.append({"path": outcome.path or raw, "error": outcome.message})
        else:
            results.append(outcome)
    unknown = sum(1 for r in results if not r.known)
    code = 2 if errors else 1 if unknown else 0
    if as_json:
        _print_json(
            _with_http(
                {
                    "results": [r.to_dict() for r in results],
                    "errors": errors,
                    "summary": {
                        "identified": len(results) - unknown,
                        "unknown": unknown,
                        "errors": len(errors),
                    },
                },
                paths,
            )
        )
    else:
        for err in errors:
            sys.stderr.write(f"tensorfile: error: {err['path']}: {err['error']}\n")
        if results:
            from ..render import identify_table

            identify_table(_console(), results, verbose=verbose)
    raise click.exceptions.Exit(code)
