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


def identify_table(console: Console, results: Sequence[Identification], verbose: bool = False) -> None:
    table = Table(show_lines=verbose, header_style="bold")
    table.add_column("path", overflow="fold")
    table.add_column("format")
    table.add_column("conf", justify="right")
    table.add_column("family")
    table.add_column("loading")
    table.add_column("notes", overflow="fold")
    for r in results:
        notes: list[str] = []
        if not r.known and r.reason:
            notes.append(r.reason)
        kind = r.details.get("checkpoint_kind") or r.details.get("variant") or r.details.get("kind")
        if kind:
            notes.append(str(kind))
        if verbose:
            notes.extend(f"· {e}" for e in r.evidence)
        text = Text("\n".join(notes))
        for w in r.warnings:
            text.append(("\n" if text.plain else "") + f"⚠ {w}", style="yellow")
        fmt = Text(r.format, style="bold" if r.known else "dim")
        table.add_row(
            r.path, fmt, f"{r.confidence:.2f}" if r.known else "-", r.family or "-", _safety(r), text
        )
    console.print(table)


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
