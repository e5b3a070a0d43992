"""HDF5 read by its structures alone: superblock, object headers, groups, attributes, datasets.

`identify`, `inspect` and `scan` need an HDF5 file's metadata (root attributes such as Keras'
model_config, the group tree, each dataset's dtype, shape and byte range), never its chunks. The
HDF5 C library behind h5py is the wrong tool for that on untrusted input: a corrupt file can make
it loop forever or crash (nothing in Python interrupts a C call, so it had to run in a forked
child), and importing h5py runs `uname -p` in a subprocess. A scanner must start no process. This
module reads the on-disk format (HDF5 File Format Specification 3.0) in plain Python with every
structure bounded: reads are checked against the file size, chunks are capped, cycles are caught,
and a budget of reads and records ends any walk a hostile file makes endless.

Supported: superblock versions 0–3 (with a user block), object headers v1 and v2 with
continuations, old-style groups (symbol table, v1 B-tree, local heap), new-style compact and dense
groups (link messages; fractal heap + v2 B-tree), compact and dense attributes, committed
datatypes, the datatype classes h5py writes (integers, IEEE floats, strings fixed and variable,
opaque, compound, enum, array, references), global-heap strings, contiguous/compact/chunked layouts.
shared object header messages (SOHM: the superblock extension's table, messages in its heaps),
fractal heaps with a filter pipeline (deflate, shuffle of any element size, fletcher32) in their
direct blocks and huge objects. Not read: chunk data. A filtered heap's Fletcher32 checksums are
verified as libhdf5 verifies them (a mismatch is a FormatError: a corrupt file); the lookup3
checksums of other v2 structures are not (the structures are parsed either way).

The surface mirrors the part of h5py the format handlers use: `File(source)` is the root `Group`;
groups have `attrs`, `keys()`, `get`, `[]`, `in`, `visititems`; a `Dataset` has `attrs`, `dtype`,
`shape`, `chunks`, `is_virtual`, `external`, `id.get_offset()`, `id.get_storage_size()` and `[()]`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAGIC",
    "AttributeManager",
    "Dataset",
    "Datatype",
    "File",
    "Group",
    "find_superblock",
    "import_h5py",
]

_LAZY = {
    "AttributeManager": "objects",
    "Dataset": "objects",
    "Datatype": "objects",
    "File": "objects",
    "Group": "objects",
    "MAGIC": "structures",
    "find_superblock": "structures",
}


def __getattr__(name: str) -> Any:
    """The readers load on first use (they need numpy, which identify of other formats does not)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def import_h5py() -> Any:
    """h5py, imported without the subprocess its import would start.

    h5py's import indexes platform.uname(), and CPython (3.9+) resolves that tuple's `processor`
    field lazily by running `uname -p`. The field is a functools.cached_property of the one cached
    uname_result, so an entry in that instance's __dict__ pre-empts the lookup; it is removed again
    after the import, so later platform.processor() calls behave as before. (convert reads array
    data with h5py; identify, inspect and scan use this module and never import h5py.)
    """
    import platform

    uname = platform.uname()
    cache = getattr(uname, "__dict__", None)
    preempt = isinstance(cache, dict) and "processor" not in cache
    if preempt:
        cache["processor"] = ""  # type: ignore[index]
    try:
        import h5py
    finally:
        if preempt:
            cache.pop("processor", None)  # type: ignore[union-attr]
    return h5py
