"""A zoo run as Ray tasks: batches of work items, each task reading its own files from storage.

A task gets a batch of a few dozen work items (path, size, ETag: a few hundred bytes each) and
calls `work.process` on each, so it opens its files itself — local paths on the node, object
URLs through fsspec with the worker's own credentials — and only the records travel back. File
bytes never enter Ray's object store (no `ray.data.read_binary_files`, which pulls whole
objects). At most `2 × CPUs` tasks are in flight (ray.wait backpressure); records are yielded as
their task finishes. A task whose worker dies is retried by Ray (`max_retries`); if it still
fails, each of its files becomes an "error" record saying so. A key already yielded is never
yielded again (the driver dedupes by path, size and ETag).

Ray is an optional extra (`pip install 'tensorfile[ray]'`), imported only here and only when
asked for. `address="local"` starts a one-node Ray on this machine (`num_cpus` = jobs, or its
cores); any other address joins that cluster ("auto", "ray://host:port" for Ray Client, or
host:port, which is probed first: ray.init retries a dead address for minutes), where each node
needs tensorfile installed. A local Ray has a reaper beside it (zoo/ray_reaper.py): a driver
killed with SIGKILL leaves none of Ray's processes behind.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Iterator
from typing import Any

from ..errors import UsageError
from . import ray_reaper
from .items import WorkItem

BATCH = 32  # files per task: amortises the ~ms of task overhead over a few dozen small reads
IN_FLIGHT_PER_CPU = 2  # tasks queued per CPU: the next batch is ready when one ends
MAX_RETRIES = 3  # reruns of a task whose worker process died
CONNECT_TIMEOUT = 10.0  # seconds to reach a Ray cluster's head before giving up
INSTALL_HINT = "--ray needs Ray: pip install 'tensorfile[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def check(address: str) -> None:
    """Fail early, before anything is listed or written: Ray missing, or an address unreachable."""
    import_ray()
    if address != "local":
        _reachable(address)


def run_ray(
    verb: str,
    items: list[WorkItem],
    options: dict[str, Any],
    address: str,
    jobs: int | None = None,
    *,
    batch: int | None = None,
    max_retries: int = MAX_RETRIES,
) -> Iterator[dict[str, Any]]:
    """Each item's record, in the order their tasks finish. Starts (and then stops) Ray unless
    the caller has already initialised it, in which case that session is used as is."""
    ray = import_ray()
    started = not ray.is_initialized()
    reaper = None
    if started:
        if address == "local":  # ours to clean up, even after a SIGKILL (zoo/ray_reaper.py)
            reaper = ray_reaper.start()
        try:
            context = _init(ray, address, jobs)
        except BaseException:
            ray_reaper.stop(reaper)
            raise
        ray_reaper.watch(reaper, (getattr(context, "address_info", None) or {}).get("session_dir"))
    try:
        yield from _drive(ray, verb, items, options, batch, max_retries)
    finally:
        if started:
            ray.shutdown()
            ray_reaper.stop(reaper)


def _init(ray: Any, address: str, jobs: int | None) -> Any:
    quiet: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,  # workers' stdout/stderr stay in Ray's session logs
        "logging_level": logging.ERROR,
        "configure_logging": True,
    }
    try:
        if address == "local":
            context = ray.init(num_cpus=jobs or os.cpu_count() or 1, **quiet)
        else:
            _reachable(address)  # again: the listing since check() may have taken long
            context = ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot start or join Ray at {address!r}: {text}") from None
    _notices_to_stderr()
    return context


def _reachable(address: str) -> None:
    """A host:port address is probed first: ray.init retries a dead one for minutes."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"a Ray address is host:port, ray://host:port or auto, not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UsageError(f"cannot reach Ray at {address!r} ({exc.strerror or exc})") from None


def _notices_to_stderr() -> None:
    """Ray's driver prints the raylet's notices ("A worker died or was killed ...") to stdout
    from a background thread, whatever log_to_driver says; stdout is for our results, so those
    go to stderr. The thread looks the printer up in ray._private.worker on each message."""
    try:
        from ray._private import worker
    except ImportError:
        return
    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "_tensorfile", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return printer({**data, "is_err": True}, *args, **kwargs)

    to_stderr._tensorfile = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _drive(
    ray: Any,
    verb: str,
    items: list[WorkItem],
    options: dict[str, Any],
    batch: int | None,
    max_retries: int,
) -> Iterator[dict[str, Any]]:
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = batch or batch_size(len(items), cpus)
    in_flight = cpus * IN_FLIGHT_PER_CPU
    task = ray.remote(_process_batch).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
    batches = (items[i : i + size] for i in range(0, len(items), size))
    pending: dict[Any, list[WorkItem]] = {}
    seen: set[tuple[str, int, str | None]] = set()
    for chunk in batches:
        pending[task.remote(verb, [i.to_wire() for i in chunk], options)] = chunk
        if len(pending) >= in_flight:
            yield from _fresh(_finish(ray, pending, max_retries, verb), seen)
    while pending:
        yield from _fresh(_finish(ray, pending, max_retries, verb), seen)


def batch_size(count: int, cpus: int) -> int:
    """BATCH files per task, fewer when the run is small, so every CPU gets a few tasks."""
    return max(1, min(BATCH, math.ceil(count / (cpus * IN_FLIGHT_PER_CPU * 2))))


def _finish(ray: Any, pending: dict[Any, list[WorkItem]], retries: int, verb: str) -> list[dict[str, Any]]:
    """Wait for one task, take it out of `pending` and return its records (or its error records)."""
    [ref], _ = ray.wait(list(pending), num_returns=1)
    chunk = pending.pop(ref)
    try:
        return ray.get(ref)
    except Exception as exc:  # the worker died max_retries + 1 times, or the task could not run
        from .work import error_record

        error = f"the Ray worker reading it failed ({_reason(exc)}), {retries + 1} times"
        return [error_record(verb, item, error) for item in chunk]


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "WorkerCrashed" in name or "ActorDied" in name or "NodeDied" in name:
        return "its process died"
    text = str(exc).strip().splitlines()
    return f"{name}: {text[0]}" if text else name


def _fresh(records: list[dict[str, Any]], seen: set[tuple[str, int, str | None]]) -> Iterator[dict[str, Any]]:
    for record in records:
        key = (record["path"], int(record["size"]), record.get("etag"))
        if key in seen:
            continue
        seen.add(key)
        io = record.setdefault("io", {})
        io.setdefault("requests", 0)
        io.setdefault("bytes", 0)
        yield record


def _process_batch(verb: str, wires: list[dict[str, Any]], options: dict[str, Any]) -> list[dict[str, Any]]:
    """The task body, on a Ray worker: every item of the batch, read from storage right there."""
    from .work import process

    return [process(verb, WorkItem.from_wire(wire), options) for wire in wires]
