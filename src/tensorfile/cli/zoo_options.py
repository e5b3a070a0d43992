"""What scan, inspect and identify share for many-file runs: --out, --resume, --ray, and the run.

With `--out results.jsonl|results.parquet` a command takes any number of inputs (local folders,
s3:// gs:// az:// prefixes, hub repos, `hf://org` / `ms://org` owners, `@repos.txt` lists), writes
one record per file there (tensorfile.zoo) and prints the summary table (`--json`: the summary
document). Without --out each command keeps its single report; inputs that name many repos
(an owner, a repo list) need --out, and say so in one line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from ..errors import UsageError
from .common import _console, _print_json

F = TypeVar("F", bound=Callable[..., Any])

SUFFIXES = (".jsonl", ".parquet")
# What ray.init(address=) takes: "auto", "local", ray://host:port, host:port (GCS address).
_RAY_ADDRESS = re.compile(r"^(auto|local|ray://[^\s/]+(/.*)?|[A-Za-z0-9_.\-\[\]:]+:\d+)$")


def _ray_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or _RAY_ADDRESS.match(value):
        return value
    raise click.BadParameter(
        f"{value!r} is not a Ray address (auto, ray://HOST:PORT, HOST:PORT); "
        "put --ray after the inputs, or write --ray=ADDRESS",
        ctx,
        param,
    )


def zoo_options(command: F) -> F:
    """--out, --resume and --ray, in that order in --help."""
    decorators = [
        click.option(
            "--out",
            type=click.Path(dir_okay=False),
            default=None,
            help="Many-file run: one JSON record per file into FILE (.jsonl, or .parquet with "
            "pyarrow), and a summary table here. Inputs may then also be s3:// gs:// az:// "
            "prefixes, hf://ORG or ms://ORG (every repo of an owner) and @FILE (a list of repos).",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="With --out: continue a run that stopped; files already in FILE (same path, size "
            "and ETag) are skipped.",
        ),
        click.option(
            "--ray",
            "ray",
            is_flag=False,
            flag_value="local",
            default=None,
            metavar="[ADDRESS]",
            callback=_ray_address,
            help="With --out: run the files as Ray tasks, on a one-node Ray on this machine (--ray "
            "alone) or on the cluster at ADDRESS (needs tensorfile[ray]).",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def check_single(inputs: tuple[str, ...] | list[str], resume: bool, ray: str | None) -> None:
    """Without --out: the zoo-only options and inputs are a one-line usage error."""
    from ..hub.orgs import parse_owner

    if resume:
        raise UsageError("--resume continues a results file: give it with --out results.jsonl")
    if ray is not None:
        raise UsageError("--ray runs a many-file run: give its results file with --out results.jsonl")
    for raw in inputs:
        if raw.startswith("@") and not os.path.lexists(raw):  # a file really named @… reads as before
            raise UsageError(f"{raw} is a list of repos: write their results with --out results.jsonl")
        if parse_owner(raw) is not None:
            raise UsageError(
                f"{raw} names every repo of an owner: write their results with --out results.jsonl"
            )


def run_many(
    verb: str,
    inputs: tuple[str, ...] | list[str],
    out: str,
    *,
    resume: bool,
    jobs: int | None,
    ray: str | None,
    options: dict[str, Any],
    as_json: bool,
) -> NoReturn:
    """The many-file run of `verb` into `out`; prints the summary and exits with its code."""
    from ..zoo.run import run_zoo

    if not out.lower().endswith(SUFFIXES):
        raise UsageError(f"--out {out}: the results file ends in .jsonl or .parquet")
    summary = run_zoo(verb, list(inputs), out, resume=resume, jobs=jobs, options=options, ray=ray)
    if as_json:
        _print_json(summary.to_dict())
    else:
        from ..zoo.report import render_summary

        render_summary(_console(), summary)
    raise click.exceptions.Exit(summary.exit_code)


def jobs_option(help_text: str) -> Callable[[F], F]:
    """-j/--jobs: worker processes (1: this process); each command says what a worker does."""
    return click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None, help=help_text)
