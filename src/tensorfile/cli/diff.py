"""`tensorfile diff`: the CLI face of tensorfile.convert.compare (options, report, exit code)."""

from __future__ import annotations

import click

from .common import _console, _print_json, _with_http, json_option


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute tolerance.")
@click.option(
    "--rtol", type=float, default=0.0, show_default=True, help="Relative tolerance (of B's values)."
)
@click.option(
    "--trust", is_flag=True, help="Read pickles that import more than tensor classes (never executed)."
)
@click.option("-a", "--all", "show_all", is_flag=True, help="List identical tensors too.")
@json_option
def diff(a: str, b: str, atol: float, rtol: float, trust: bool, show_all: bool, as_json: bool) -> None:
    """Compare two models tensor by tensor: missing and extra names, dtype and shape changes, the
    largest absolute and relative differences.

    Exit code 0 when both hold the same names and shapes and every value is within
    |a - b| <= atol + rtol * |b|; 1 when not; 2 on an error.
    """
    from ..convert.compare import diff as run_diff
    from ..convert.report import render_diff

    report = run_diff(a, b, atol=atol, rtol=rtol, trust=trust)
    if as_json:
        _print_json(_with_http(report.to_dict(), [a, b]))
    else:
        render_diff(_console(), report, show_all=show_all)
    raise click.exceptions.Exit(report.exit_code)


def _choice(*values: str) -> click.Choice:
    return click.Choice(values, case_sensitive=False)
