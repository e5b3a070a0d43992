"""The terminal view of a scan: one block per file with its findings, worst first, and a summary."""

from __future__ import annotations

from typing import Any

from .findings import ScanReport, rank

_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_VERDICT = {"unsafe": "bold red", "error": "bold magenta", "incomplete": "yellow", "clean": "green"}


def render_report(console: Any, report: ScanReport, *, verbose: bool = False) -> None:
    from rich.markup import escape

    shown_floor = rank("info") if verbose else rank("medium")
    for result in report.results:
        verdict = result.verdict(report.fail_on)
        findings = [f for f in result.findings if rank(f.severity) >= shown_floor]
        if verdict == "clean" and not findings and not verbose:
            continue
        fmt = f" [dim]({result.format})[/]" if result.format else ""
        console.print(f"[{_VERDICT[verdict]}]{verdict.upper()}[/] {escape(result.path)}{fmt}")
        if result.error:
            console.print(f"  [magenta]could not be scanned:[/] {escape(result.error)}")
        for f in sorted(findings, key=lambda f: -rank(f.severity)):
            where = f" [dim]at {escape(f.location)}[/]" if f.location else ""
            console.print(f"  [{_STYLE[f.severity]}]{f.severity:<8}[/] {escape(f.rule)}{where}")
            console.print(f"           {escape(f.message)}")
            if f.evidence:
                console.print(f"           [dim]evidence:[/] {escape(f.evidence)}")
            if f.advice:
                console.print(f"           [dim]safer:[/] {escape(f.advice)}")
    verdicts = report.verdicts()
    counts = ", ".join(f"{n} {sev}" for sev, n in report.counts().items() if n)
    console.print(
        f"[bold]{len(report.results)} file(s)[/]: {verdicts['clean']} clean, {verdicts['unsafe']} unsafe, "
        f"{verdicts['incomplete']} incomplete, {verdicts['error']} not scanned"
        + (f"; findings: {counts}" if counts else "")
        + f" (fail level: {report.fail_on})"
    )
