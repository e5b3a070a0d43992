"""`tensorfile download`: the CLI face of tensorfile.download (options, progress, report, exit code)."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from .common import _console, _print_json, json_option


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("repo", required=False)
@click.argument("files", nargs=-1)
@click.option("--model", "model_option", metavar="REPO", help="The repo (ModelScope's own spelling).")
@click.option(
    "--hub",
    type=click.Choice(["huggingface", "modelscope", "hf", "ms"]),
    default=None,
    help="Hub of a bare owner/name (default: TENSORFILE_HUB, else huggingface; with --model modelscope).",
)
@click.option("--revision", default=None, help="Branch, tag or commit (default: main / master).")
@click.option(
    "--local-dir",
    "--local_dir",
    "local_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Put the files here instead of the hub's cache (HF_HUB_CACHE / MODELSCOPE_CACHE).",
)
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching GLOB (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Never files matching GLOB (repeatable).")
@click.option("--all", "take_all", is_flag=True, help="Every file, not just one safe weight set.")
@click.option("--quant", default=None, metavar="TYPE", help="GGUF repos: the quantization to take (Q4_K_M…).")
@click.option("--dry-run", is_flag=True, help="Show what would be downloaded and why; fetch nothing.")
@click.option("--max-workers", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--token", default=None, help="Hub token (default: HF_TOKEN / MODELSCOPE_API_TOKEN).")
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low", "info"]),
    default="high",
    show_default=True,
    help="Scan findings at or above this keep the files in quarantine.",
)
@click.option("--allow-unsafe", is_flag=True, help="Place files even when the scan finds code.")
@click.option("-q", "--quiet", is_flag=True, help="Only the summary lines, no table or progress.")
@json_option
def download(
    repo: str | None,
    files: tuple[str, ...],
    model_option: str | None,
    hub: str | None,
    revision: str | None,
    local_dir: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    take_all: bool,
    quant: str | None,
    dry_run: bool,
    max_workers: int,
    token: str | None,
    fail_on: str,
    allow_unsafe: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Download a model from Hugging Face or ModelScope safely: one weight set, safetensors
    first (pickled duplicates and other exports skipped, with the reason), every file checked
    against the hub's hash, scanned before it is placed, into the hub's own cache (or
    --local-dir).

    REPO is hf://owner/name, ms://owner/name, a hub web address, or owner/name with --hub.
    FILES (names or globs) download just those. Exit code 0 when placed, 1 when the scan kept
    the files in quarantine, 2 on an error (nothing placed).
    """
    from ..download import download as run_download
    from ..download.report import DownloadProgress, render_download

    if model_option and repo:
        files = (repo, *files)
    repo = model_option or repo
    if not repo:
        raise UsageError("name a repo: tensorfile download hf://owner/name (or --model owner/name)")
    if model_option and hub is None and "://" not in repo:
        hub = "modelscope"  # `modelscope download --model …`, copied as is
    hub = {"hf": "huggingface", "ms": "modelscope"}.get(hub or "", hub)
    show_progress = not (as_json or quiet or dry_run) and sys.stderr.isatty()
    with DownloadProgress(show_progress) as bar:
        report = run_download(
            repo,
            files,
            hub=hub,
            revision=revision,
            local_dir=local_dir,
            include=include,
            exclude=exclude,
            take_all=take_all,
            quant=quant,
            dry_run=dry_run,
            max_workers=max_workers,
            token=token or None,
            fail_on=fail_on,
            allow_unsafe=allow_unsafe,
            progress=bar.advance,
            on_start=bar.start,
            sizes=bar.sizes,
        )
    if as_json:
        _print_json(report.to_dict())
    else:
        render_download(_console(), report, quiet=quiet)
        if report.error:
            sys.stderr.write(f"tensorfile: error: {report.error}\n")
    raise click.exceptions.Exit(report.exit_code)
