"""Rich rendering for the CLI: tables only, no computation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import Identification


def _safety(result: Identification) -> Text:
    if result.can_execute_code is None:
        return Text("-", style="dim")
    if result.can_execute_code:
        return Text("can run code", style="bold red")
    return Text("no code", style="green")


def _notes(result: Identification, verbose: bool) -> Text:
    parts: list[str] = []
    if not result.known and result.reason:
        parts.append(result.reason)
    kind = (
        result.details.get("checkpoint_kind") or result.details.get("variant") or result.details.get("kind")
    )
    if kind:
        parts.append(str(kind))
    if result.details.get("producer"):
        parts.append(str(result.details["producer"]))
    if result.details.get("compression"):
        parts.append(f"{result.details['compression']}-compressed")
    if verbose:
        parts.append(f"family: {result.family}" if result.family else "")
        parts.extend(f"· {e}" for e in result.evidence)
    return Text("\n".join(p for p in parts if p))


def identify_table(console: Console, results: Sequence[Identification], verbose: bool = False) -> None:
    """One row per input; warnings follow the table, where long sentences stay readable."""
    table = Table(show_lines=verbose, header_style="bold")
    table.add_column("path", overflow="fold", ratio=3)
    table.add_column("format", no_wrap=True)
    table.add_column("conf", justify="right", no_wrap=True)
    table.add_column("loading", no_wrap=True)
    table.add_column("notes", overflow="fold", ratio=2)
    for r in results:
        fmt = Text(r.format, style="bold" if r.known else "dim")
        if r.warnings:
            fmt.append(" ⚠", style="yellow")
        table.add_row(r.path, fmt, f"{r.confidence:.2f}" if r.known else "-", _safety(r), _notes(r, verbose))
    console.print(table)
    for r in results:
        for w in r.warnings:
            console.print(Text("⚠ ", style="yellow") + Text(f"{r.path}: ", style="bold") + Text(w))


def formats_table(console: Console, rows: Sequence[Any]) -> None:
    table = Table(show_lines=True, header_style="bold")
    for col in ("format", "extensions", "family", "safe", "strengths", "weaknesses", "typical use", "tools"):
        table.add_column(col, overflow="fold")
    for f in rows:
        safe = Text("yes", style="green") if f.safe_to_load else Text("NO", style="bold red")
        tools = "write: " + ", ".join(f.produced_by[:3]) + "\nread: " + ", ".join(f.consumed_by[:3])
        table.add_row(
            f"{f.name}\n[dim]{f.id}[/dim]",
            " ".join(f.extensions),
            f.family,
            safe,
            f.strengths,
            f.weaknesses,
            f.typical_use,
            tools,
        )
    console.print(table)


def dtypes_table(console: Console, rows: Sequence[Any]) -> None:
    table = Table(header_style="bold")
    for col in ("type", "kind", "bits/weight", "block", "bytes/block", "meaning"):
        table.add_column(col, overflow="fold")
    for d in rows:
        table.add_row(
            d.name, d.kind, f"{d.bits_per_weight:g}", str(d.block_size), str(d.type_size), d.description
        )
    console.print(table)


def explain_table(console: Console, line: str, parts: Sequence[dict[str, Any]]) -> None:
    table = Table(title=f"tensor types {line}", header_style="bold")
    for col in ("type", "meaning", "role"):
        table.add_column(col, overflow="fold")
    for p in parts:
        table.add_row(str(p.get("name")), str(p.get("description", "")), str(p.get("role", "")))
    console.print(table)
