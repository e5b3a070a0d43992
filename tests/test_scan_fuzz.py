"""The pickle reader and scanner on hostile bytes: never an exception other than FormatError,
never a hang. Short hypothesis runs here; the same properties hold for longer runs."""

from __future__ import annotations

import contextlib
import io
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from tensorfile.errors import FormatError
from tensorfile.picklevm import read_pickle, read_pickle_lenient
from tensorfile.scan.pickles import scan_pickle

from .pickle_asm import Asm

SEEDS = [pickle.dumps({"a": [1, 2.5, "x", b"y"], "b": (None, True)}, protocol=p) for p in range(6)] + [
    Asm(4).call("os", "system", "id").stop().build_bytes(),
    Asm(None).mark().text_string("x").inst("builtins", "exec").stop().build_bytes(),
    Asm(4).str_("a").put(1).get(1).get(1).stack_global().empty_dict().build().stop().build_bytes(),
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(0, 400),
)
def test_mutated_pickles(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    data = bytes(data[: max(cut, 1)])
    with contextlib.suppress(FormatError):
        read_pickle(data)
    result = read_pickle_lenient(io.BytesIO(data))
    assert result.error is None or isinstance(result.error, str)
    scan_pickle(io.BytesIO(data))  # must not raise


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        read_pickle(data)
    scan_pickle(io.BytesIO(data))


def test_huge_claimed_lengths_do_not_allocate() -> None:
    for opcode, width in ((b"\x8e", 8), (b"\x8d", 8), (b"\x96", 8), (b"B", 4), (b"X", 4)):
        data = b"\x80\x04" + opcode + (b"\xff" * (width - 1)) + b"\x7f"
        result = read_pickle_lenient(io.BytesIO(data))
        assert result.error is not None
    deep = b"\x80\x04" + b"(" * 200_000 + b"."
    assert read_pickle_lenient(io.BytesIO(deep)).error is not None


def test_deep_tuple_keys_do_not_crash_the_interpreter() -> None:
    # CPython hashes nested tuples recursively in C: a 200k-deep key used to segfault
    data = b"\x80\x04}" + b"N" + b"\x85" * 200_000 + b"Ns."
    assert list(read_pickle(data).value) == ["<unhashable tuple>"]
    frozen = b"\x80\x04(N" + b"\x85" * 200_000 + b"\x91."
    assert read_pickle(frozen).value == frozenset({"<unhashable tuple>"})
