"""The command-line front end. It parses options, calls the library and renders; it computes nothing.

With --json every command prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from . import __version__
from .errors import TensorfileError

app = typer.Typer(
    name="tensorfile",
    help="Tell what a model file really is, look inside it without loading it, and check whether "
    "loading it could run code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JSON_HELP = "Print one JSON document on stdout instead of tables."


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _fail(message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(f"tensorfile: error: {message}\n")
    return typer.Exit(code)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"tensorfile {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Model files, before you run them."""


@app.command()
def identify(
    paths: list[str] = typer.Argument(..., help="Files, folders or glob patterns.", show_default=False),
    recursive: bool = typer.Option(
        False, "-r", "--recursive", help="Look inside folders that are not themselves a model."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show the evidence for each answer."),
) -> None:
    """Tell which model format each path really is, by content, and whether loading it can run code.

    Exit code 0 when every input was identified, 1 when some are unknown, 2 on an error
    (missing or unreadable path).
    """
    from .identify import expand

    results = []
    errors = []
    for raw, outcome in expand(paths, recursive=recursive):
        if isinstance(outcome, TensorfileError):
            errors.append({"path": outcome.path or raw, "error": outcome.message})
        else:
            results.append(outcome)
    unknown = sum(1 for r in results if not r.known)
    code = 2 if errors else 1 if unknown else 0
    if as_json:
        _print_json(
            {
                "results": [r.to_dict() for r in results],
                "errors": errors,
                "summary": {"identified": len(results) - unknown, "unknown": unknown, "errors": len(errors)},
            }
        )
    else:
        for err in errors:
            sys.stderr.write(f"tensorfile: error: {err['path']}: {err['error']}\n")
        if results:
            from .render import identify_table

            identify_table(_console(), results, verbose=verbose)
    raise typer.Exit(code)


@app.command()
def formats(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    family: str | None = typer.Option(None, "--family", help="Only formats of this family."),
) -> None:
    """The model formats tensorfile knows: family, extensions, strengths, safety, tools."""
    from . import catalog

    rows = [f for f in catalog.FORMATS if family is None or f.family == family]
    if family is not None and family not in catalog.FAMILIES:
        raise _fail(f"unknown family {family!r}; choose from {', '.join(catalog.FAMILIES)}")
    if as_json:
        _print_json({"families": catalog.FAMILIES, "formats": [f.to_dict() for f in rows]})
        return
    from .render import formats_table

    formats_table(_console(), rows)


@app.command()
def dtypes(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    explain: str | None = typer.Option(
        None, "--explain", help='Explain a tensor-type line like "BF16·I32·F32".'
    ),
) -> None:
    """The tensor types (F32, BF16, F8, I64…, ggml quant types) with bits, block sizes and meaning."""
    from . import dtypes as dt

    if explain is not None:
        try:
            parts = dt.explain_composite(explain)
        except (KeyError, ValueError) as exc:
            raise _fail(f"cannot explain {explain!r}: {exc}") from None
        if as_json:
            _print_json({"line": explain, "parts": parts})
            return
        from .render import explain_table

        explain_table(_console(), explain, parts)
        return
    if as_json:
        from dataclasses import asdict

        _print_json({"dtypes": [asdict(d) for d in dt.DTYPES]})
        return
    from .render import dtypes_table

    dtypes_table(_console(), dt.DTYPES)


def main() -> None:
    try:
        app()
    except TensorfileError as exc:
        sys.stderr.write(f"tensorfile: error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("tensorfile: interrupted\n")
        sys.exit(130)
