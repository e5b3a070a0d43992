"""`tensorfile scan`: the CLI face of tensorfile.scan (options, report, SARIF, exit code)."""

from __future__ import annotations

import json

import click

from ..errors import UsageError
from .common import _console, _print_json, _with_http, json_option
from .zoo_options import check_single, jobs_option, run_many, zoo_options


@click.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write SARIF 2.1.0 to FILE ('-': print it instead of the report).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low", "info"]),
    default="high",
    show_default=True,
    help="Lowest severity that makes the exit code 1.",
)
@jobs_option(
    "Worker processes (default: one per CPU, at most 8; 1: scan in this process). A file whose "
    "worker dies is scanned again on a fresh one, and reported as not scanned if that one dies too."
)
@click.option("-v", "--verbose", is_flag=True, help="Also list info and low findings and clean files.")
@zoo_options
def scan(
    paths: tuple[str, ...],
    as_json: bool,
    sarif_file: str | None,
    fail_on: str,
    jobs: int | None,
    verbose: bool,
    out: str | None,
    resume: bool,
    ray: str | None,
) -> None:
    """Find what could run code when each PATH (file or folder, recursively) is loaded — without
    loading, importing or unpickling anything from it.

    Exit code 0 when nothing reaches --fail-on, 1 when something does, 2 when a file could not
    be scanned (an unreadable or undecidable file is never reported as clean).
    """
    from ..scan import scan as run_scan

    if out is not None:
        if sarif_file:
            raise UsageError("--sarif writes one report: not with --out (the records are in --out)")
        run_many(
            "scan",
            paths,
            out,
            resume=resume,
            jobs=jobs,
            ray=ray,
            options={"fail_on": fail_on},
            as_json=as_json,
        )
    check_single(paths, resume, ray)
    if sarif_file == "-" and as_json:
        raise UsageError("--sarif - and --json both print to standard output; choose one")
    report = run_scan(paths, fail_on=fail_on, jobs=jobs)
    if sarif_file:
        from ..atomic import write_text_atomic
        from ..scan.sarif import to_sarif

        sarif = json.dumps(to_sarif(report), indent=2)
        if sarif_file == "-":  # SARIF on stdout, for CI steps that pipe it on
            click.echo(sarif)
        else:
            write_text_atomic(sarif_file, sarif)
    if as_json:
        _print_json(_with_http(report.to_dict(), paths))
    elif sarif_file != "-":
        from ..scan.report import render_report

        render_report(_console(), report, verbose=verbose)
    raise click.exceptions.Exit(report.exit_code)
