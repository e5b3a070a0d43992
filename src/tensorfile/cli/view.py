"""`tensorfile view`: the CLI face of tensorfile.view (serve the page, or write it as one file)."""

from __future__ import annotations

import sys
import webbrowser

import click

from .common import _fail


@click.command()
@click.argument("path")
@click.argument("path_b", required=False)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option("--no-browser", is_flag=True, help="Print the address only; do not open a browser.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the page as one self-contained HTML file to OUT and exit (no server).",
)
def view(path: str, path_b: str | None, port: int, no_browser: bool, html_out: str | None) -> None:
    """Look at a model in the browser: summary, dtype chart, tensor table, layer tree, memory to run
    and fine-tune it, scan findings and metadata; with PATH_B also the diff of the two. Reads
    headers only (the diff compares values), like inspect, for anything inspect reads.

    The page is served on 127.0.0.1 with a random token in its address; Ctrl-C stops it.
    With --html OUT the same page is written as one file that needs no network to open.
    """
    from ..view.documents import build_documents

    documents = build_documents(path, path_b)
    if html_out:
        from ..view.html import write_html

        write_html(html_out, documents)
        click.echo(html_out)
        return
    from ..view.server import ViewServer

    try:
        server = ViewServer(documents, port)
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    with server:
        click.echo(f"tensorfile view: {server.url}  (Ctrl-C stops it)")
        sys.stdout.flush()
        if not no_browser:
            webbrowser.open(server.url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            sys.stderr.write("tensorfile view: stopped\n")
