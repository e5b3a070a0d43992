"""`tensorfile identify`: the CLI face of tensorfile.identification (options, table, exit code)."""

from __future__ import annotations

import sys

import click

from ..errors import TensorfileError
from .common import _console, _print_json, _with_http, json_option
from .zoo_options import check_single, jobs_option, run_many, zoo_options


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Look inside folders that are not themselves a model.")
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence for each answer.")
@jobs_option("With --out: worker processes (default: one per CPU, at most 8; 1: this process).")
@zoo_options
def identify(
    paths: tuple[str, ...],
    recursive: bool,
    as_json: bool,
    verbose: bool,
    jobs: int | None,
    out: str | None,
    resume: bool,
    ray: str | None,
) -> None:
    """Tell which model format each PATH (file, folder or glob) really is, by content, and whether
    loading it can run code.

    Exit code 0 when every input was identified, 1 when some are unknown, 2 on an error
    (missing or unreadable path).
    """
    if out is not None:  # every file on its own: -r is what a many-file run does anyway
        run_many("identify", paths, out, resume=resume, jobs=jobs, ray=ray, options={}, as_json=as_json)
    check_single(paths, resume, ray)
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
