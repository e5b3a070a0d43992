"""The ways a user names something on a hub, parsed into one `HubRef`.

Spellings: `hf://owner/name[@rev][/path]`, `ms://owner/name[@rev][/path]` (HfFileSystem's `@rev`),
the hubs' own web addresses (`https://huggingface.co/owner/name/resolve/main/x.safetensors`,
`https://modelscope.cn/models/owner/name/file/view/master/x`), and for `download` a bare
`owner/name` with the hub chosen by `--hub` or TENSORFILE_HUB. Any other `https://` address is a
single file (`UrlRef`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import UsageError

HUGGINGFACE = "huggingface"
MODELSCOPE = "modelscope"
HUBS = (HUGGINGFACE, MODELSCOPE)
SCHEMES = {"hf": HUGGINGFACE, "ms": MODELSCOPE, "modelscope": MODELSCOPE, "huggingface": HUGGINGFACE}
DEFAULT_REVISION = {HUGGINGFACE: "main", MODELSCOPE: "master"}
_WEB_HOSTS = {
    "huggingface.co": HUGGINGFACE,
    "hf.co": HUGGINGFACE,
    "modelscope.cn": MODELSCOPE,
    "www.modelscope.cn": MODELSCOPE,
    "modelscope.ai": MODELSCOPE,
    "www.modelscope.ai": MODELSCOPE,
}
# Hub naming rules (both hubs): letters, digits, '-', '_', '.'; no '--' or '..' games.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_PREFIXES = ("hf://", "ms://", "modelscope://", "huggingface://", "https://", "http://")


@dataclass(frozen=True)
class HubRef:
    """A repo on a hub, a revision (None: the hub's default branch) and a path inside it."""

    hub: str
    repo_id: str
    revision: str | None = None
    path: str = ""

    @property
    def scheme(self) -> str:
        return "hf" if self.hub == HUGGINGFACE else "ms"

    @property
    def revision_or_default(self) -> str:
        return self.revision or DEFAULT_REVISION[self.hub]

    def url(self) -> str:
        """The canonical spelling, as outputs name it."""
        rev = f"@{self.revision}" if self.revision else ""
        tail = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{self.repo_id}{rev}{tail}"

    def __str__(self) -> str:
        return self.url()


@dataclass(frozen=True)
class UrlRef:
    """One file at a plain http(s) address."""

    url: str

    def __str__(self) -> str:
        return self.url


def is_remote(text: str) -> bool:
    """True for the spellings this package reads (a local path never starts with a scheme)."""
    return text.lower().startswith(_PREFIXES)


def parse(text: str) -> HubRef | UrlRef:
    """A remote input as a HubRef (a hub repo or a file in one) or a UrlRef; UsageError otherwise."""
    lowered = text.lower()
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in SCHEMES:
        return _parse_repo_path(SCHEMES[scheme.lower()], rest, text)
    if lowered.startswith(("https://", "http://")):
        return _parse_web(text)
    raise UsageError(f"not a hub address: {text!r} (use hf://owner/name, ms://owner/name or https://…)")


def parse_repo_id(text: str, hub: str | None = None, revision: str | None = None) -> HubRef:
    """For `download`: `hf://…`, `ms://…`, a hub web address, or a bare `owner/name` (hub from
    `hub`, else TENSORFILE_HUB, else Hugging Face)."""
    if "://" in text:
        ref = parse(text)
        if isinstance(ref, UrlRef):
            raise UsageError(f"{text!r} is not a Hugging Face or ModelScope repo")
        if revision:
            ref = HubRef(ref.hub, ref.repo_id, revision, ref.path)
        return ref
    chosen = (hub or os.environ.get("TENSORFILE_HUB") or HUGGINGFACE).lower()
    chosen = SCHEMES.get(chosen, chosen)
    if chosen not in HUBS:
        raise UsageError(f"unknown hub {chosen!r} (choose huggingface or modelscope)")
    ref = _parse_repo_path(chosen, text, text)
    if ref.path:
        raise UsageError(f"{text!r}: a repo id is owner/name")
    return HubRef(chosen, ref.repo_id, revision or ref.revision)


def _parse_repo_path(hub: str, rest: str, original: str) -> HubRef:
    parts = [p for p in rest.split("/") if p != ""]
    if len(parts) < 2:
        raise UsageError(f"{original!r}: a repo is owner/name")
    owner, name = parts[0], parts[1]
    revision = None
    if "@" in name:
        name, _, revision = name.partition("@")
        revision = unquote(revision) or None
    if owner in ("datasets", "spaces"):
        raise UsageError(f"{original!r}: only model repos are read (not {owner})")
    for piece in (owner, name):
        if not _NAME.match(piece) or ".." in piece or "--" in piece:
            raise UsageError(f"{original!r}: {piece!r} is not a valid repo name part")
    path = "/".join(parts[2:])
    if any(p in (".", "..") for p in parts[2:]):
        raise UsageError(f"{original!r}: a path inside a repo cannot contain '.' or '..'")
    return HubRef(hub, f"{owner}/{name}", revision, path)


def _parse_web(text: str) -> HubRef | UrlRef:
    """A hub web address read as the repo or file it shows; anything else is a plain URL."""
    split = urlsplit(text)
    hub = _WEB_HOSTS.get((split.hostname or "").lower())
    if hub is None:
        return UrlRef(text)
    parts = [unquote(p) for p in split.path.split("/") if p]
    if hub == MODELSCOPE:
        # /models/owner/name[/file/view/REV/path] or /models/owner/name/resolve/REV/path
        if len(parts) < 3 or parts[0] != "models":
            return UrlRef(text)
        parts = parts[1:]
        owner, name, tail = parts[0], parts[1], parts[2:]
        if tail[:2] == ["file", "view"] and len(tail) >= 3:
            return _checked(hub, owner, name, tail[2], "/".join(tail[3:]), text)
    else:
        if len(parts) < 2:
            return UrlRef(text)
        owner, name, tail = parts[0], parts[1], parts[2:]
    if len(tail) >= 2 and tail[0] in ("resolve", "blob", "tree"):
        return _checked(hub, owner, name, tail[1], "/".join(tail[2:]), text)
    if not tail:
        return _checked(hub, owner, name, None, "", text)
    return UrlRef(text)


def _checked(hub: str, owner: str, name: str, revision: str | None, path: str, text: str) -> HubRef:
    ref = _parse_repo_path(hub, f"{owner}/{name}/{path}", text)
    return HubRef(hub, ref.repo_id, revision, ref.path)
