"""`tensorfile inspect`: the CLI face of tensorfile.inspection (options, report, pager)."""

from __future__ import annotations

import os

import click

from .common import _console, _fail, _print_json, _with_http, json_option
from .zoo_options import check_single, jobs_option, run_many, zoo_options


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@json_option
@click.option(
    "--filter", "pattern", default=None, metavar="GLOB", help="Only tensors whose name matches GLOB."
)
@click.option(
    "--sort",
    type=click.Choice(["name", "size", "params", "dtype", "offset"]),
    default=None,
    help="Order of the tensor table (default: file order).",
)
@click.option(
    "--limit", type=int, default=None, help="Show at most N tensors (default 40 in tables, all in JSON)."
)
@click.option("--all", "show_all", is_flag=True, help="Show every tensor in the table.")
@jobs_option("With --out: worker processes (default: one per CPU, at most 8; 1: this process).")
@zoo_options
def inspect(
    paths: tuple[str, ...],
    as_json: bool,
    pattern: str | None,
    sort: str | None,
    limit: int | None,
    show_all: bool,
    jobs: int | None,
    out: str | None,
    resume: bool,
    ray: str | None,
) -> None:
    """Show what is inside a model file or folder, from its headers only: tensors, parameter counts,
    dtypes, structure, quantization, training state and metadata. Nothing is loaded or executed.

    One PATH, or with --out many (each file of each folder inspected on its own)."""
    from ..inspection import inspect as inspect_model
    from ..inspection import select_tensors

    if out is not None:
        if limit is not None and limit < 0:
            raise _fail("--limit must be 0 or more")
        options = {"pattern": pattern, "sort": sort, "limit": limit}
        run_many("inspect", paths, out, resume=resume, jobs=jobs, ray=ray, options=options, as_json=as_json)
    check_single(paths, resume, ray)
    if len(paths) > 1:
        raise _fail(f"inspect reads one PATH (got {len(paths)}); for many, write records with --out FILE")
    path = paths[0]
    info = inspect_model(path)
    if limit is not None and limit < 0:
        raise _fail("--limit must be 0 or more")
    if as_json:
        _print_json(_with_http(info.to_dict(select_tensors(info.tensors, pattern, sort, limit)), [path]))
        return
    from ..render import inspect_report

    shown_limit = None if show_all else (40 if limit is None else limit)
    chosen = select_tensors(info.tensors, pattern, sort)
    console = _console()
    rows = len(chosen) if not shown_limit else min(len(chosen), shown_limit)
    if console.is_terminal and rows + 30 > console.height:
        # A long table goes through the pager (less -R keeps the colours) instead of scrolling away.
        os.environ.setdefault("LESS", "-R")
        with console.pager(styles=True):
            inspect_report(console, info, chosen, shown_limit)
    else:
        inspect_report(console, info, chosen, shown_limit)
