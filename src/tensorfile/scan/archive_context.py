"""What every archive walker shares: the `Member` it yields, the `Limits` of a walk, and the
`WalkContext` that counts members, checks entry names and holds the findings that streams report
while the caller reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..source import ByteSource
from .findings import Finding

MAX_TOTAL = 16 << 30  # decompressed bytes per archive, nested walks included
MAX_MEMBERS = 100_000
MAX_COPY = 4 << 30  # a nested zip/7z copied out of a compressed member
LZMA_MEMLIMIT = 320 << 20  # the most an xz/lzma stream may ask for (its dictionary)
CHUNK = 1 << 20  # bytes per step when copying, skipping or searching

ARCHIVE_ADVICE = "share and load model weights as safetensors (see `tensorfile convert`), not inside archives"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")


@dataclass
class Limits:
    """Caps for one archive walk; pass the same instance to nested walks to share the budget."""

    max_total: int = MAX_TOTAL
    max_members: int = MAX_MEMBERS
    max_copy: int = MAX_COPY
    used: int = 0  # decompressed bytes so far
    exceeded: bool = False


@dataclass
class Member:
    """One file inside an archive, readable without extracting anything to disk."""

    name: str  # the name a loader would use (zip: central directory name)
    size: int | None  # uncompressed size when known
    head: bytes  # first up to HEAD_SIZE bytes of the decompressed content
    open: Callable[[], BinaryIO]  # fresh stream of the decompressed content, from byte 0
    container: str  # "zip" | "tar" | "7z" | "gzip" | "bz2" | "xz" | "lzma" | "zlib"
    # Random access to the content when it lies uncompressed in the file (stored zip member,
    # plain tar member): a nested zip is then walked in place instead of copied.
    source: ByteSource | None = field(default=None, repr=False)


class WalkContext:
    """One walk: its limits, and findings that streams report while the caller reads them."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits = limits
        self.label = label
        self.members = 0
        self._pending: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()
        self._names: set[str] = set()

    def report(self, finding: Finding) -> None:
        key = (finding.rule, finding.location)
        if key not in self._seen:
            self._seen.add(key)
            self._pending.append(finding)

    def drain(self) -> Iterator[Finding]:
        while self._pending:
            yield self._pending.pop(0)

    @property
    def stop(self) -> bool:
        return self.limits.exceeded

    def hit_limit(self) -> None:
        if not self.limits.exceeded:
            self.limits.exceeded = True
            self.report(
                Finding(
                    "archive-too-large",
                    "medium",
                    "The archive decompresses to more data than the scan limit (a possible "
                    "decompression bomb); the rest was not checked.",
                    f"more than {self.limits.max_total} decompressed bytes",
                    "",
                    ARCHIVE_ADVICE,
                )
            )

    def count_member(self) -> bool:
        """Count one more member; False (and a finding) once the cap is passed."""
        self.members += 1
        if self.members > self.limits.max_members:
            self.report(
                Finding(
                    "archive-too-many-members",
                    "medium",
                    "The archive holds more entries than the scan limit; the rest was not checked.",
                    f"more than {self.limits.max_members} entries",
                    "",
                    ARCHIVE_ADVICE,
                )
            )
            return False
        return True

    def check_name(self, name: str, container: str) -> None:
        """Path-traversal and duplicate-name findings for one entry name."""
        reason = escape_reason(name)
        if reason:
            self.report(
                Finding(
                    "archive-path-traversal",
                    "high",
                    "An entry's name points outside the folder the archive is extracted to "
                    "(zip slip): extracting it can overwrite any file the user can write.",
                    f"{name!r}: {reason}",
                    name,
                    f"do not extract this {container} with a tool that trusts entry names",
                )
            )
        if name in self._names:
            self.report(
                Finding(
                    "archive-duplicate-name",
                    "low",
                    "Two entries share this name; tools disagree on which one they read.",
                    name,
                    name,
                )
            )
        self._names.add(name)

    def corrupt(self, message: str, evidence: str, location: str = "") -> None:
        self.report(Finding("archive-corrupt", "medium", message, evidence, location))


def escape_reason(name: str) -> str | None:
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        return "absolute path"
    if re.match(r"[A-Za-z]:", norm):
        return "Windows drive path"
    for part in norm.split("/"):
        if part == ".." or (".." in part and not part.rstrip(" .")):
            return "'..' component" + (" (with backslashes)" if "\\" in name else "")
    return None


def looks_pickle_name(name: str) -> bool:
    return name.lower().endswith(_PICKLE_SUFFIXES)
