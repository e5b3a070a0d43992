"""The command-line front end. It parses options, calls the library and renders; it computes nothing.

With --json every command prints exactly one JSON document on stdout and nothing else there.
Each verb's command is its own module here (helpers they share: common.py); this one holds the
group, registers the commands and turns errors into one line and an exit code.
"""

from __future__ import annotations

import contextlib
import sys

import click

from .. import __version__
from ..errors import TensorfileError
from . import convert, diff, download, dtypes, estimate, formats, identify, inspect, recommend, scan, view

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="tensorfile", message="%(prog)s %(version)s")
def app() -> None:
    """Tell what a model file really is, look inside it without loading it, and check whether
    loading it could run code."""


for _command in (
    identify.identify,
    inspect.inspect,
    formats.formats,
    dtypes.dtypes,
    scan.scan,
    convert.convert,
    diff.diff,
    estimate.estimate,
    recommend.recommend,
    download.download,
    view.view,
):
    app.add_command(_command)


def main() -> None:
    # Names read from hostile files can hold lone surrogates (undecodable zip names, pickle
    # strings): print them as \udcXX escapes, which also keeps --json output valid JSON, rather
    # than fail with UnicodeEncodeError (strict stdout) or write invalid UTF-8 (surrogateescape).
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        # Not click's standalone mode: it turns Ctrl-C into "Aborted!" with exit 1, which for
        # `scan` and `diff` means "unsafe" / "different".
        code = app.main(prog_name="tensorfile", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        sys.stderr.write("tensorfile: interrupted\n")
        sys.exit(130)
    except click.exceptions.UsageError as exc:  # bad option or argument: one line, like any bad input
        sys.stderr.write(f"tensorfile: error: {exc.format_message()}\n")
        sys.exit(2)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TensorfileError as exc:
        sys.stderr.write(f"tensorfile: error: {exc}\n")
        sys.exit(2)
    except OSError as exc:  # disk full, permission lost mid-write: one line, outputs already rolled back
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"tensorfile: error: {where}{exc.strerror or exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("tensorfile: interrupted\n")
        sys.exit(130)
