"""Inputs to work items: every file under local folders, object-store prefixes and hub repos,
each with the size and ETag that --resume compares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, TensorfileError
from ..source import check_path

_SKIP_DIRS = (".git", "__pycache__")


@dataclass(frozen=True)
class WorkItem:
    """One file to process. `kind`: "local", "object" (s3://…) or "hub" (hf://…, ms://…).
    `etag`: the store's ETag, a hub file's hash, or a local file's mtime in nanoseconds.
    `error`: set for a repo of an owner or a list that could not be listed (kind "repo", size 0):
    it becomes an error record of its own, and the run goes on with the other repos."""

    path: str
    size: int
    etag: str | None
    kind: str
    error: str | None = None

    def key(self) -> tuple[str, int, str | None]:
        return (self.path, self.size, self.etag)

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "etag": self.etag, "kind": self.kind}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkItem:
        return cls(data["path"], int(data["size"]), data.get("etag"), data["kind"])


def expand(inputs: list[str]) -> Iterator[WorkItem]:
    """Every file of every input, in input order; an input that cannot be listed is an InputError
    (a TensorfileError), but a repo of an owner or of a list is an error item (WorkItem.error)."""
    for raw in inputs:
        if raw.startswith("@"):
            yield from _repo_list(Path(raw[1:]))
            continue
        if "://" in raw:
            from ..hub.objectstore import is_object_url

            if is_object_url(raw):
                yield from _objects(raw)
                continue
            from ..hub.refs import is_remote

            if is_remote(raw):
                yield from _hub(raw)
                continue
        yield from _local(Path(raw))


def _local(path: Path) -> Iterator[WorkItem]:
    st = check_path(path)
    if not path.is_dir():
        yield WorkItem(str(path), st.st_size, f"mtime-ns:{st.st_mtime_ns}", "local")
        return
    found = False
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(names):
            file = Path(root) / name
            try:
                st = file.lstat()
            except OSError:
                continue
            if not file.is_file() or file.is_symlink():
                continue
            found = True
            yield WorkItem(str(file), st.st_size, f"mtime-ns:{st.st_mtime_ns}", "local")
    if not found:
        raise InputError("folder holds no files", path)


def _objects(url: str) -> Iterator[WorkItem]:
    from ..hub.objectstore import list_objects

    for obj in list_objects(url):
        yield WorkItem(obj.url, obj.size, obj.etag, "object")


def _hub(text: str, in_list: bool = False) -> Iterator[WorkItem]:
    """A hub repo (or a folder or file in one), or every model repo of an owner (`hf://org`);
    `in_list`: a line of a repo list."""
    from ..hub.orgs import list_owner_repos, parse_owner

    owner = parse_owner(text)
    if owner is None:
        yield from (_one_of_many(text) if in_list else _hub_repo(text))
        return
    scheme = text.partition("://")[0].lower()
    for repo_id in list_owner_repos(*owner):  # an owner that cannot be listed stops the run
        yield from _one_of_many(f"{scheme}://{repo_id}")


def _one_of_many(text: str) -> Iterator[WorkItem]:
    """A repo of an owner or a list: one that cannot be listed (gone, private, the hub's 500) is
    an error item, so one bad repo of thousands costs one record, not the run."""
    try:
        files = list(_hub_repo(text))
    except TensorfileError as exc:
        reason = (exc.message.strip().splitlines() or [type(exc).__name__])[0]
        yield WorkItem(text, 0, None, "repo", error=f"the repo could not be listed: {reason}")
        return
    yield from files


def _hub_repo(text: str) -> Iterator[WorkItem]:
    from ..hub.remote import open_remote_cached

    root = open_remote_cached(text)
    files = [root] if root.is_file() else list(root.walk_files())
    for path in files:
        remote = path.remote_file
        if remote is None:
            continue
        yield WorkItem(str(path), remote.size, remote.sha256 or remote.git_sha1, "hub")


def _repo_list(listing: Path) -> Iterator[WorkItem]:
    """`@repos.txt`: one repo per line (hf://owner/name, ms://owner/name, or owner/name for Hugging
    Face; hf://owner or ms://owner for all of an owner's repos); blank lines and # comments are
    skipped."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the repo list ({exc.strerror or exc})", listing) from None
    for line in lines:
        repo = line.split("#", 1)[0].strip()
        if repo:
            yield from _hub(repo if "://" in repo else f"hf://{repo}", in_list=True)
