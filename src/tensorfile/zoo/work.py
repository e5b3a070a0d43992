"""One verb on one work item: the JSON record of one line, with the requests and bytes it cost.

This is the handler of the local pool's workers (`python -m tensorfile.scan.pool --handler
tensorfile.zoo.work:handle`) and of the Ray tasks; the serial run calls it in-process. A record
never raises: a file that cannot be read is a record with verdict "error".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import TensorfileError
from .items import WorkItem
from .meter import Meter

VERBS = ("scan", "inspect", "identify")


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """{"verb", "item", "options"} in, the item's record out."""
    return process(request["verb"], WorkItem.from_wire(request["item"]), request.get("options") or {})


def error_record(verb: str, item: WorkItem | dict[str, Any], message: str) -> dict[str, Any]:
    """The record of an item that was not read: a repo that could not be listed, a file that
    cannot be opened, or one whose worker kept dying."""
    wire = item.to_wire() if isinstance(item, WorkItem) else item
    return {**wire, "verb": verb, "verdict": "error", "format": None, "error": message, "io": _zero()}


def process(verb: str, item: WorkItem, options: dict[str, Any]) -> dict[str, Any]:
    if item.error is not None:
        return error_record(verb, item, item.error)
    record: dict[str, Any] = {**item.to_wire(), "verb": verb}
    try:
        path = _open(item)
    except TensorfileError as exc:
        return error_record(verb, item, exc.message)
    repo = getattr(path, "repo", None)
    if repo is None:  # a local file: what this thread read while the verb ran (zoo/meter.py)
        with Meter() as meter:
            outcome = _run(verb, path, options)
        io = meter.counts()
    else:
        before = _remote_io(repo)
        outcome = _run(verb, path, options)
        after = _remote_io(repo)
        io = {k: after[k] - before[k] for k in before}
    record.update(outcome)
    record["io"] = io
    return record


def _open(item: WorkItem) -> Any:
    if item.kind == "object":
        from ..hub.objectstore import open_object

        return open_object(item.path, item.size)
    if item.kind == "hub":  # the repo is listed once per process, each file is a path in it
        from ..hub.refs import HubRef, parse
        from ..hub.remote import open_remote_cached

        ref = parse(item.path)
        if not isinstance(ref, HubRef) or not ref.path:
            return open_remote_cached(item.path)
        return open_remote_cached(HubRef(ref.hub, ref.repo_id, ref.revision).url()) / ref.path
    return Path(item.path)


def _run(verb: str, path: Any, options: dict[str, Any]) -> dict[str, Any]:
    if verb == "scan":
        from ..scan.scanner import scan_file

        result = scan_file(path).to_dict(options.get("fail_on", "high"))
        result.pop("path")
        return {"verdict": result["verdict"], "format": result["format"], "error": result["error"], **result}
    if verb == "identify":
        from ..identification import identify

        try:
            ident = identify(path)
        except TensorfileError as exc:
            return {"verdict": "error", "format": None, "error": exc.message}
        data = ident.to_dict()
        data.pop("path", None)
        verdict = "identified" if ident.known else "unknown"
        return {"verdict": verdict, "format": ident.format if ident.known else None, "error": None, **data}
    if verb == "inspect":
        from ..inspection import inspect, select_tensors

        try:
            info = inspect(path)
        except TensorfileError as exc:
            return {"verdict": "error", "format": None, "error": exc.message}
        pattern, sort, limit = options.get("pattern"), options.get("sort"), options.get("limit")
        tensors = select_tensors(info.tensors, pattern, sort, limit)
        data = info.to_dict(tensors)
        data.pop("path", None)
        return {"verdict": "inspected", "error": None, **data, "format": info.format}
    raise ValueError(f"unknown verb {verb!r}")


def _zero() -> dict[str, int]:
    return {"requests": 0, "bytes": 0}


def _remote_io(repo: Any) -> dict[str, int]:
    """A remote path's range fetches so far: every file of its repo, so a sibling read by
    identify (config.json beside the weights) counts."""
    sources = list(repo._sources.values())
    return {"requests": sum(s.requests for s in sources), "bytes": sum(s.bytes_read for s in sources)}
