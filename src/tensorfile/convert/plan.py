"""Decide what to write before writing anything: which tensors, under which names and dtypes,
which names are aliases of one stored tensor, and how they split into shards."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from ..errors import UnsupportedError, UsageError
from .cast import cast_to
from .stream import OutTensor
from .tensors import SourceTensor, element_size, is_ggml_quantized

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_POWER = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """'5GB' -> 5e9 and '500MiB' -> 500 * 2**20, as huggingface_hub reads --max-shard-size."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"size {text!r}: write it like 5GB, 500MB or 2GiB")
    number, unit = float(match[1]), (match[2] or "b").lower()
    size = int(number * (1024 if "i" in unit else 1000) ** _POWER[unit[0]])
    if size <= 0:
        raise UsageError(f"size {text!r} must be positive")
    return size


@dataclass
class Selection:
    """--include / --exclude globs and --rename OLD=NEW prefix rules."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    rename: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_options(cls, include: list[str], exclude: list[str], rename: list[str]) -> Selection:
        rules = []
        for rule in rename:
            if "=" not in rule:
                raise UsageError(f"--rename {rule!r}: write it as OLD_PREFIX=NEW_PREFIX (NEW may be empty)")
            old, new = rule.split("=", 1)
            if not old:
                raise UsageError(f"--rename {rule!r}: the old prefix is empty")
            rules.append((old, new))
        return cls(list(include), list(exclude), rules)

    def keeps(self, name: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(name, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in self.exclude)

    def renamed(self, name: str) -> str:
        for old, new in self.rename:
            if name.startswith(old):
                return new + name[len(old) :]
        return name


@dataclass
class Plan:
    """The tensors to store, in order, and the names that point at one of them."""

    tensors: list[OutTensor]
    aliases: dict[str, str]  # alias name -> stored name (same storage, same view)
    copied_views: int = 0  # tensors sharing storage with another but a different view
    tied_copies: int = 0  # without dedupe: names over one view written again as copies
    skipped: int = 0  # left out by --include/--exclude

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def make_plan(tensors: list[SourceTensor], selection: Selection, dtype: str | None, *, dedupe: bool) -> Plan:
    """Select, rename and cast; with `dedupe`, tied names over one view are stored once."""
    chosen: list[OutTensor] = []
    seen: set[str] = set()
    skipped = 0
    for t in tensors:
        if not selection.keeps(t.name):
            skipped += 1
            continue
        name = selection.renamed(t.name)
        if not name:
            raise UsageError(f"--rename turns {t.name!r} into an empty name")
        if name in seen:
            raise UsageError(f"two tensors would both be named {name!r} (check --rename)")
        seen.add(name)
        if is_ggml_quantized(t.dtype):
            chosen.append(OutTensor(name, t, dtype or "F32"))  # dequantized, like gguf-py does
            continue
        _check_streamable(t)
        chosen.append(OutTensor(name, t, cast_to(t.dtype, dtype)))
    if not chosen:
        raise UsageError("no tensors left to write (check --include/--exclude)")
    stored, aliases, copied, tied = _share(chosen, dedupe)
    return Plan(stored, aliases, copied, tied, skipped)


def _check_streamable(t: SourceTensor) -> None:
    try:
        element_size(t.dtype)
    except UnsupportedError as exc:
        raise UnsupportedError(
            f"tensor {t.name!r}: {exc.message}; --exclude it to convert the rest"
        ) from None


def _view_key(t: SourceTensor) -> tuple[object, ...]:
    return (t.dtype, t.shape, t.element_offset, t.strides if not t.contiguous else None)


def _share(chosen: list[OutTensor], dedupe: bool) -> tuple[list[OutTensor], dict[str, str], int, int]:
    """Group names over one storage: identical views become aliases (the sorted-first name is kept,
    as safetensors' own `save_model` does), differing views are written as separate copies.
    Without `dedupe` identical views are copies too; the last number counts them."""
    by_storage: dict[tuple[object, str], list[OutTensor]] = {}
    for t in chosen:
        if t.source.storage_key is not None:
            by_storage.setdefault((t.source.file, t.source.storage_key), []).append(t)
    aliases: dict[str, str] = {}
    copied = tied = 0
    for group in by_storage.values():
        if len(group) < 2:
            continue
        views: dict[tuple[object, ...], list[OutTensor]] = {}
        for t in group:
            views.setdefault(_view_key(t.source), []).append(t)
        if len(views) > 1:
            copied += sum(len(v) for v in views.values()) - (1 if dedupe else 0)
        if not dedupe:
            tied += sum(len(same) - 1 for same in views.values())
            continue
        for same in views.values():
            keep = min(same, key=lambda t: t.name)
            for t in same:
                if t is not keep:
                    aliases[t.name] = keep.name
    stored = [t for t in chosen if t.name not in aliases]
    return stored, aliases, copied, tied


def shard(tensors: list[OutTensor], max_bytes: int | None) -> list[list[OutTensor]]:
    """Split as huggingface_hub's split_state_dict_into_shards does: in order, a new shard when the
    next tensor would pass the limit; a tensor bigger than the limit gets a shard of its own."""
    if max_bytes is None:
        return [tensors]
    shards: list[list[OutTensor]] = []
    current: list[OutTensor] = []
    size = 0
    for t in tensors:
        if t.nbytes > max_bytes:
            shards.append([t])
            continue
        if current and size + t.nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += t.nbytes
    if current:
        shards.append(current)
    return shards or [[]]


def shard_names(stem: str, count: int, ext: str = "safetensors") -> list[str]:
    if count == 1:
        return [f"{stem}.{ext}"]
    return [f"{stem}-{i:05d}-of-{count:05d}.{ext}" for i in range(1, count + 1)]
