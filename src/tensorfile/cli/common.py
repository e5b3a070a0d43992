"""What the CLI modules share: the --json option and its printer, the console, the one-line error."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

JSON_HELP = "Print one JSON document on stdout instead of tables."

json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)


def _print_json(data: Any) -> None:
    """The document, written as it is encoded: json.dumps(indent=2) of a 30,000-tensor report
    holds ~40 MB of small strings before joining them into its 6 MB of text."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, default=str)
    chunks: list[str] = []
    for chunk in encoder.iterencode(data):
        chunks.append(chunk)
        if len(chunks) >= 4096:
            sys.stdout.write("".join(chunks))
            chunks.clear()
    sys.stdout.write("".join(chunks) + "\n")


def _with_http(data: dict[str, Any], inputs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Add the requests and bytes fetched when any input was read from a hub or URL."""
    from ..hub.refs import is_remote

    if any(is_remote(i) for i in inputs):
        from ..hub.http import STATS

        data["http"] = STATS.snapshot()
    return data


def _fail(message: str, code: int = 2) -> click.exceptions.Exit:
    sys.stderr.write(f"tensorfile: error: {message}\n")
    return click.exceptions.Exit(code)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _choice(*values: str) -> click.Choice:
    return click.Choice(values, case_sensitive=False)
