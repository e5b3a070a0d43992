"""The terminal summary of a zoo run: a table of files by format and verdict, and the totals."""

from __future__ import annotations

from typing import Any

from .run import Summary

_ORDER = ("clean", "unsafe", "incomplete", "identified", "unknown", "inspected", "error")


def render_summary(console: Any, summary: Summary) -> None:
    from rich.table import Table

    verdicts = summary.verdicts()
    columns = [v for v in _ORDER if v in verdicts] + sorted(v for v in verdicts if v not in _ORDER)
    console.print(f"{summary.verb}: {summary.files:,} file(s) in {summary.out}", highlight=False)
    table = Table()
    table.add_column("format")
    for verdict in columns:
        table.add_column(verdict, justify="right")
    for fmt in sorted(summary.table):
        row = summary.table[fmt]
        table.add_row(fmt, *(f"{row.get(v, 0):,}" for v in columns))
    table.add_row("[bold]all[/]", *(f"[bold]{verdicts[v]:,}[/]" for v in columns))
    console.print(table)
    rate = summary.processed / summary.seconds if summary.seconds else 0.0
    per_file = summary.bytes_read / summary.processed if summary.processed else 0.0
    console.print(
        f"{summary.processed:,} processed in {summary.seconds:,.1f} s ({rate:,.1f} files/s), "
        f"{summary.skipped:,} already done; {summary.requests:,} requests, "
        f"{summary.bytes_read / 1e6:,.1f} MB read ({per_file / 1e3:,.1f} kB per file)"
    )
