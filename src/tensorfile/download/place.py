"""Where downloaded files go: a plain folder (`--local-dir`) or the hub's own cache, in the official
client's layout, so `from_pretrained`, `snapshot_download(local_files_only=True)` and
`modelscope` find them afterwards.

Every destination stages files under its own root (same filesystem, so placing is a rename),
keeps quarantined files apart from where loaders look, and can tell whether a file is already
there and intact (then it is not downloaded again).

Staging holds resume state, not garbage: `<path>.part` (a partial file, resumed by the next run
that fetches the same path) and `<path>` (verified but not placed when the run stopped, kept by
the next run that wants it). `sweep` keeps all of it for the paths the current run fetches, and
removes the rest (another selection's, another revision's, a file since deleted from the repo)
once nothing has written to it for STALE_DAYS, in this destination's staging and, for the hub
caches, in the staging areas of the cache's other repos; never a part a live run holds locked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path

from ..atomic import remove_if_unlocked, write_text_atomic
from ..errors import InputError
from ..hub.listing import RemoteFile, RepoListing
from ..hub.refs import HUGGINGFACE
from .fetch import expected_hash, file_digest

_COMMIT_LEN = 40
STALE_DAYS = 7.0


class Destination:
    """Base: a root folder holding the placed files, a staging area and a quarantine."""

    def __init__(self, root: Path, work: Path, label: str, top: Path) -> None:
        self.root = root  # what the user gets: the folder of the repo's files
        self.work = work  # our staging and quarantine, never looked at by loaders
        self.label = label
        self.top = top  # empty folders of ours are removed up to here

    @property
    def staging(self) -> Path:
        return self.work / "staging"

    def final_path(self, rel: str) -> Path:
        return self.root / rel

    def present(self, file: RemoteFile) -> bool:
        """The file is already in place with the hub's size and hash."""
        return _intact(self.final_path(file.path), file)

    def place(self, file: RemoteFile, staged: Path) -> Path:
        target = self.final_path(file.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target

    def finish(self) -> None:
        """After every file is placed: drop the empty staging area."""
        _remove_empty(self.staging, stop=self.top)

    def quarantine(self, staged: list[tuple[str, Path]]) -> Path:
        """Move staged files into a fresh quarantine folder; its path."""
        folder = self.work / "quarantine" / time.strftime("%Y%m%d-%H%M%S")
        for rel, path in staged:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        _remove_empty(self.staging, stop=self.top)
        return folder

    def staging_areas(self) -> list[Path]:
        """The staging folders `sweep` looks at: this destination's."""
        return [self.staging]

    def sweep(self, fetching: set[str]) -> int:
        """Remove what no run will resume (see the module docstring); the bytes freed."""
        freed = 0
        cutoff = time.time() - STALE_DAYS * 86400
        for area in self.staging_areas():
            for root, _dirs, files in os.walk(area):
                for name in files:
                    path = Path(root, name)
                    rel = path.relative_to(area).as_posix().removesuffix(".part")
                    if area == self.staging and rel in fetching:
                        continue
                    with contextlib.suppress(OSError):
                        if path.lstat().st_mtime < cutoff:
                            freed += remove_if_unlocked(path)
            if area != self.staging:
                _remove_empty(area, stop=area.parent.parent)
        return freed

    def prepare(self) -> None:
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write here: {exc.strerror or exc}", self.work) from None


class LocalDir(Destination):
    """`--local-dir D`: files at D/<path>; staging in D/.cache/tensorfile (hf uses D/.cache/huggingface)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, root / ".cache" / "tensorfile", str(root), root)


class HuggingFaceCache(Destination):
    """huggingface_hub's cache: blobs/<etag>, snapshots/<commit>/<path> -> blob, refs/<revision>."""

    def __init__(self, listing: RepoListing, cache: Path | None = None) -> None:
        from huggingface_hub import constants

        base = Path(cache or constants.HF_HUB_CACHE)
        repo_dir = base / ("models--" + listing.ref.repo_id.replace("/", "--"))
        if not listing.commit:
            raise InputError("the hub named no commit for this revision", f"hf://{listing.ref.repo_id}")
        self.repo_dir = repo_dir
        self.listing = listing
        work = base / ".tensorfile" / repo_dir.name
        super().__init__(repo_dir / "snapshots" / listing.commit, work, str(repo_dir), base)

    def _blob(self, file: RemoteFile) -> Path:
        _, digest = expected_hash(file)
        return self.repo_dir / "blobs" / (digest or hashlib.sha256(file.path.encode()).hexdigest())

    def staging_areas(self) -> list[Path]:
        """This repo's staging, then the other repos' in the same cache."""
        others = sorted(p for p in self.work.parent.glob("*/staging") if p != self.staging)
        return [self.staging, *others]

    def present(self, file: RemoteFile) -> bool:
        """The file is in the snapshot; or its blob is, intact (a run stopped before it linked it:
        the link is made now)."""
        link = self.final_path(file.path)
        if not _intact(self._blob(file), file):
            return False
        if not link.exists():
            self._link(file)
        return True

    def place(self, file: RemoteFile, staged: Path) -> Path:
        blob = self._blob(file)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, blob)
        return self._link(file)

    def _link(self, file: RemoteFile) -> Path:
        blob = self._blob(file)
        link = self.final_path(file.path)
        link.parent.mkdir(parents=True, exist_ok=True)
        temp = link.with_name(f".{link.name}.tensorfile-link")
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        os.symlink(os.path.relpath(blob, link.parent), temp)
        os.replace(temp, link)  # atomic: a reader sees the old link or the new one
        return link

    def finish(self) -> None:
        revision = self.listing.ref.revision_or_default
        if self.listing.commit and revision != self.listing.commit:
            refs = self.repo_dir / "refs" / revision
            refs.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(refs, self.listing.commit)
        super().finish()


class ModelScopeCache(Destination):
    """ModelScope's cache (modelscope_hub 0.5, which modelscope 1.40 delegates to):
    MODELSCOPE_CACHE/models/<owner>--<name>/snapshots/<revision name>/<path>, plain files."""

    def __init__(self, listing: RepoListing, cache: Path | None = None) -> None:
        from modelscope_hub.config import get_default_config

        base = Path(cache or get_default_config().cache_dir)
        owner, name = listing.ref.repo_id.split("/", 1)
        repo_dir = base / "models" / f"{owner}--{name}"
        root = repo_dir / "snapshots" / listing.ref.revision_or_default
        self.listing = listing
        super().__init__(root, base / ".tensorfile" / f"models--{owner}--{name}", str(root), base)


def destination_for(listing: RepoListing, local_dir: str | None) -> Destination:
    if local_dir:
        return LocalDir(Path(local_dir))
    if listing.ref.hub == HUGGINGFACE:
        return HuggingFaceCache(listing)
    return ModelScopeCache(listing)


def _intact(path: Path, file: RemoteFile) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != file.size:
            return False
    except OSError:
        return False
    kind, want = expected_hash(file)
    return want is None or file_digest(path, file, kind) == want


def _remove_empty(folder: Path, stop: Path) -> None:
    """Remove `folder` and its empty parents up to (not including) `stop`, if they are empty."""
    if not folder.exists():
        return
    for root, dirs, _files in os.walk(folder, topdown=False):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, d))
    current = folder
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def free_space(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
