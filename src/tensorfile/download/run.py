"""`download`: list the revision, choose safe files, fetch and verify them into staging, scan them
with the scan engine, then place them all, or quarantine them all.

Nothing appears where loaders look until every chosen file is complete, verified and scanned: a
failed, refused, interrupted or killed run leaves only the staging area (resumable) or the
quarantine. What staging keeps, and for how long, is in place.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, TensorfileError
from ..hub import http
from ..hub.listing import RemoteFile, RepoListing, list_repo
from ..hub.refs import HubRef, parse_repo_id
from .fetch import Fetched, fetch_file
from .place import Destination, destination_for, free_space
from .select import Choice, Selection, select_files

SPACE_MARGIN = 64 * 1024 * 1024

# (path, bytes) progress callback and a start(total_bytes, files) hook for the front end.
ProgressFn = Callable[[str, int], None]


@dataclass
class FileOutcome:
    choice: Choice
    status: str  # planned | present | downloaded | skipped | quarantined | failed
    fetched: Fetched | None = None
    scan: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        f = self.choice.file
        out: dict[str, Any] = {
            "path": f.path,
            "size_bytes": f.size,
            "kind": self.choice.kind,
            "chosen": self.choice.chosen,
            "reason": self.choice.reason,
            "status": self.status,
        }
        if self.fetched is not None:
            out["verified"] = {"hash": self.fetched.hash_kind, "digest": self.fetched.digest}
            out["resumed_from_bytes"] = self.fetched.resumed_from
            out["attempts"] = self.fetched.attempts
        if self.scan is not None:
            out["scan"] = self.scan
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class DownloadReport:
    ref: HubRef
    commit: str | None
    destination: str
    dry_run: bool
    fail_on: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quarantine: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    http: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    exit_code: int = 0
    error: str | None = None

    def totals(self) -> dict[str, int]:
        chosen = [o for o in self.outcomes if o.choice.chosen]
        skipped = [o for o in self.outcomes if not o.choice.chosen]
        return {
            "files": len(chosen),
            "bytes": sum(o.choice.file.size for o in chosen),
            "skipped_files": len(skipped),
            "skipped_bytes": sum(o.choice.file.size for o in skipped),
            "downloaded_files": sum(1 for o in chosen if o.status == "downloaded"),
            "present_files": sum(1 for o in chosen if o.status == "present"),
            "verified_files": sum(1 for o in chosen if o.fetched is not None or o.status == "present"),
            "fetched_bytes": sum(o.fetched.fetched for o in chosen if o.fetched is not None),
        }

    def scan_verdict(self) -> str:
        verdicts = [o.scan["verdict"] for o in self.outcomes if o.scan]
        for worst in ("unsafe", "error", "incomplete"):
            if worst in verdicts:
                return worst
        return "clean" if verdicts else "not scanned"

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.ref.repo_id,
            "hub": self.ref.hub,
            "revision": self.ref.revision_or_default,
            "commit": self.commit,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "files": [o.to_dict() for o in self.outcomes],
            "totals": self.totals(),
            "scan": {"fail_on": self.fail_on, "verdict": self.scan_verdict()},
            "quarantine": self.quarantine,
            "model": self.model,
            "notes": self.notes,
            "http": self.http,
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "error": self.error,
        }


def download(
    repo: str,
    files: tuple[str, ...] | list[str] = (),
    *,
    hub: str | None = None,
    revision: str | None = None,
    local_dir: str | None = None,
    include: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    take_all: bool = False,
    quant: str | None = None,
    dry_run: bool = False,
    max_workers: int = 8,
    token: str | None = None,
    fail_on: str = "high",
    allow_unsafe: bool = False,
    progress: ProgressFn | None = None,
    on_start: Callable[[int, int], None] | None = None,
    sizes: Callable[[dict[str, int]], None] | None = None,
) -> DownloadReport:
    """Download a repo's safe files, verified and scanned. Raises TensorfileError (HubError,
    UsageError, InputError) for what stops it before any file is placed; a refused scan and a
    failed verification are reported (exit_code 1 and 2) with nothing placed."""
    started = time.monotonic()
    before = http.STATS.snapshot()
    ref = parse_repo_id(repo, hub, revision)
    listing = list_repo(ref, token)
    selection = select_files(
        listing.files.values(), include=[*files, *include], exclude=exclude, take_all=take_all, quant=quant
    )
    dest = destination_for(listing, local_dir)
    report = DownloadReport(
        ref, listing.commit, str(dest.root), dry_run, fail_on, notes=list(selection.notes)
    )
    to_fetch = _plan(report, selection, dest)
    if sizes is not None:
        sizes({o.choice.file.path: o.choice.file.size for o in to_fetch})
    if not dry_run:
        _run(report, listing, dest, to_fetch, max_workers, fail_on, allow_unsafe, progress, on_start)
    report.http = _delta(before, http.STATS.snapshot())
    report.seconds = time.monotonic() - started
    return report


def _plan(report: DownloadReport, selection: Selection, dest: Destination) -> list[FileOutcome]:
    to_fetch = []
    for choice in selection.choices:
        if not choice.chosen:
            report.outcomes.append(FileOutcome(choice, "skipped"))
            continue
        outcome = FileOutcome(
            choice, "present" if not report.dry_run and dest.present(choice.file) else "planned"
        )
        report.outcomes.append(outcome)
        if outcome.status == "planned":
            to_fetch.append(outcome)
    return to_fetch


def _run(
    report: DownloadReport,
    listing: RepoListing,
    dest: Destination,
    to_fetch: list[FileOutcome],
    max_workers: int,
    fail_on: str,
    allow_unsafe: bool,
    progress: ProgressFn | None,
    on_start: Callable[[int, int], None] | None,
) -> None:
    freed = dest.sweep({o.choice.file.path for o in to_fetch})
    if freed:
        report.notes.append(f"removed {freed / 2**20:.1f} MiB of abandoned partial downloads")
    if to_fetch:
        dest.prepare()
        _check_space(dest, [o.choice.file for o in to_fetch])
    if on_start is not None:
        on_start(sum(o.choice.file.size for o in to_fetch), len(to_fetch))
    failures = _fetch_all(listing, dest, to_fetch, max_workers, progress)
    if failures:
        report.exit_code = 2
        report.error = "; ".join(f"{o.choice.file.path}: {o.error}" for o in failures)
        report.notes.append("nothing was placed; verified files stay in staging for the next run")
        return
    _scan_all(to_fetch, fail_on)
    blocked = [o for o in to_fetch if o.scan and o.scan["verdict"] in ("unsafe", "error")]
    if blocked and not allow_unsafe:
        folder = dest.quarantine([(o.choice.file.path, o.fetched.staged) for o in to_fetch if o.fetched])
        for o in to_fetch:
            o.status = "quarantined"
        report.quarantine = str(folder)
        report.exit_code = 1
        names = ", ".join(o.choice.file.path for o in blocked)
        report.error = f"the scan found what can run code ({names}): nothing was placed"
        return
    if blocked:
        report.notes.append("placed despite scan findings (--allow-unsafe)")
    for o in to_fetch:
        assert o.fetched is not None
        dest.place(o.choice.file, o.fetched.staged)
        o.status = "downloaded"
    dest.finish()
    report.model = _summarise(dest.root)


def _check_space(dest: Destination, files: list[RemoteFile]) -> None:
    need = 0
    for f in files:
        part = dest.staging / (f.path + ".part")
        have = part.stat().st_size if part.is_file() else 0
        need += max(0, f.size - have)
    free = free_space(dest.staging)
    if need + SPACE_MARGIN > free:
        raise InputError(
            f"not enough free space: the download needs {need / 2**30:.2f} GiB, "
            f"{free / 2**30:.2f} GiB is free",
            dest.staging,
        )


def _fetch_all(
    listing: RepoListing,
    dest: Destination,
    to_fetch: list[FileOutcome],
    max_workers: int,
    progress: ProgressFn | None,
) -> list[FileOutcome]:
    failures: list[FileOutcome] = []
    if not to_fetch:
        return failures

    cancel = threading.Event()

    def one(outcome: FileOutcome) -> None:
        path = outcome.choice.file.path
        tick = (lambda n: progress(path, n)) if progress is not None else None
        outcome.fetched = fetch_file(listing, outcome.choice.file, dest.staging, tick, cancel)

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        futures = {pool.submit(one, o): o for o in to_fetch}
        try:
            wait(futures)
        except KeyboardInterrupt:
            # Workers stop at their next chunk; what they wrote stays in staging for a resume.
            cancel.set()
            for fut in futures:
                fut.cancel()
            raise
        for fut, outcome in futures.items():
            exc = fut.exception()
            if exc is None:
                continue
            if isinstance(exc, (http.HubAuthError, http.HubNotFound)) or not isinstance(exc, TensorfileError):
                raise exc
            outcome.status = "failed"
            outcome.error = exc.message
            failures.append(outcome)
    return failures


def _scan_all(outcomes: list[FileOutcome], fail_on: str) -> None:
    from ..scan.scanner import scan_file

    for o in outcomes:
        assert o.fetched is not None
        result = scan_file(o.fetched.staged)
        data = result.to_dict(fail_on)
        data["path"] = o.choice.file.path
        o.scan = data


def _summarise(root: Path) -> dict[str, Any]:
    """Tensor types, parameters and the memory to run the model as stored; empty when the files
    are not a model tensorfile reads (a tokenizer-only download, say)."""
    from ..estimate import estimate_memory
    from ..inspection import inspect

    try:
        info = inspect(root)
    except TensorfileError:
        return {}
    model: dict[str, Any] = {
        "format": info.format,
        "tensor_types": info.tensor_types,
        "parameter_count": info.parameter_count,
        "total_bytes": info.total_bytes,
    }
    try:
        est = estimate_memory(root)
        model["memory_to_run_bytes"] = est.per_gpu_bytes
        model["memory_setting"] = "inference, as stored, batch 1"
    except (TensorfileError, ValueError):
        pass
    return model


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
