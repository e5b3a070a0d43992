"""The pickle scanner judges what CPython's unpickler actually does with the bytes.

- Python 2 names resolve as C's find_class resolves them (`_compat_pickle`, below protocol 3 only),
  so Python 2-era pickles of plain data are clean, and their hostile names are still caught.
- Plain data pickled by CPython itself is clean at every protocol, with or without fix_imports.
- Quantized torch tensors (what torch.load(weights_only=True) accepts) are clean.
- Parser differentials: frames that lie, arguments spelled the way C accepts and a naive reader
  does not, stack operations C allows on plain values, streams without a PROTO header. Where the
  C unpickler's own behaviour is the point, the referee child (tests/pickle_referee.py) runs it.

Hand-made Python 2 streams are checked with CPython's own pickle.loads (they name only datetime,
decimal, collections and builtins); hostile streams are never loaded, only read by the referee's
stand-in unpickler.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pickle
import struct
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorfile.picklevm import read_pickle, read_pickle_lenient
from tensorfile.scan import scan_file
from tensorfile.scan.findings import Finding, rank
from tensorfile.scan.pickles import scan_pickle

from .pickle_asm import Asm
from .pickle_referee import Referee


def findings(data: bytes) -> list[Finding]:
    return scan_pickle(io.BytesIO(data)).findings


def loud(data: bytes, level: str = "high") -> list[tuple[str, str, str]]:
    return [(f.severity, f.rule, f.evidence) for f in findings(data) if rank(f.severity) >= rank(level)]


def worst(data: bytes) -> str | None:
    return max((f.severity for f in findings(data)), key=rank, default=None)


@pytest.fixture(scope="module")
def referee() -> Iterator[Referee]:
    with Referee() as child:
        yield child


# --- Python 2 streams, byte for byte as Python 2.7's pickle writes them -------------------------

P2_POINT = b"ccopy_reg\n_reconstructor\np0\n(c__main__\nPoint\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n"

PYTHON2_PLAIN: dict[str, tuple[bytes, Any]] = {
    "datetime p0": (
        b"cdatetime\ndatetime\np0\n(S'\\x07\\xe4\\x01\\x02\\x03\\x04\\x05\\x00\\x00\\x00'\np1\ntp2\nRp3\n.",
        datetime.datetime(2020, 1, 2, 3, 4, 5),
    ),
    "datetime p1": (
        b"cdatetime\ndatetime\nq\x00(U\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x00q\x01tq\x02Rq\x03.",
        datetime.datetime(2020, 1, 2, 3, 4, 5),
    ),
    "datetime p2": (
        b"\x80\x02cdatetime\ndatetime\nq\x00U\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x00q\x01\x85q\x02Rq\x03.",
        datetime.datetime(2020, 1, 2, 3, 4, 5),
    ),
    "Decimal p0": (b"cdecimal\nDecimal\np0\n(S'1.5'\np1\ntp2\nRp3\n.", decimal.Decimal("1.5")),
    "Decimal p2": (b"\x80\x02cdecimal\nDecimal\nq\x00U\x031.5q\x01\x85q\x02Rq\x03.", decimal.Decimal("1.5")),
    "OrderedDict p0": (
        b"ccollections\nOrderedDict\np0\n((lp1\n(lp2\nS'a'\np3\naI1\naatp4\nRp5\n.",
        collections.OrderedDict(a=1),
    ),
    "OrderedDict p2": (
        b"\x80\x02ccollections\nOrderedDict\nq\x00]q\x01]q\x02(U\x01aq\x03K\x01ea\x85q\x04Rq\x05.",
        collections.OrderedDict(a=1),
    ),
    "defaultdict p0": (
        b"ccollections\ndefaultdict\np0\n(c__builtin__\nlist\np1\ntp2\nRp3\nS'a'\np4\n(lp5\nI1\nas.",
        collections.defaultdict(list, a=[1]),
    ),
    "defaultdict p2": (
        b"\x80\x02ccollections\ndefaultdict\nq\x00c__builtin__\nlist\nq\x01\x85q\x02Rq\x03U\x01aq\x04]q\x05K\x01as.",
        collections.defaultdict(list, a=[1]),
    ),
    "Counter p2": (
        b"\x80\x02ccollections\nCounter\nq\x00}q\x01U\x01aq\x02K\x02s\x85q\x03Rq\x04.",
        collections.Counter(a=2),
    ),
    "set p0": (b"c__builtin__\nset\np0\n((lp1\nI1\naI2\natp2\nRp3\n.", {1, 2}),
    "set p2": (b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.", {1, 2}),
    "frozenset p2": (
        b"\x80\x02c__builtin__\nfrozenset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.",
        frozenset({1, 2}),
    ),
    "complex p0": (b"c__builtin__\ncomplex\np0\n(F1.0\nF2.0\ntp1\nRp2\n.", 1 + 2j),
    "complex p2": (
        b"\x80\x02c__builtin__\ncomplex\nq\x00G?\xf0\x00\x00\x00\x00\x00\x00G@\x00\x00\x00\x00\x00\x00\x00"
        b"\x86q\x01Rq\x02.",
        1 + 2j,
    ),
    "bytearray p2": (
        b"\x80\x02c__builtin__\nbytearray\nq\x00X\x02\x00\x00\x00abq\x01U\x07latin-1q\x02\x86q\x03Rq\x04.",
        bytearray(b"ab"),
    ),
    "long p0": (b"L1000000000000000000000000000000L\n.", 10**30),
    # xrange(1, 10, 2).__reduce__() is (xrange, (1, 11, 2)) in Python 2.7
    "xrange p0": (b"c__builtin__\nxrange\np0\n(I1\nI11\nI2\ntp1\nRp2\n.", range(1, 11, 2)),
    "xrange p2": (b"\x80\x02c__builtin__\nxrange\nq\x00K\x01K\x0bK\x02\x87q\x01Rq\x02.", range(1, 11, 2)),
    "unicode p0": (b"Vcaf\xe9\np0\n.", "caf\u00e9"),
    "ValueError p2": (
        b"\x80\x02cexceptions\nValueError\nq\x00U\x03badq\x01\x85q\x02Rq\x03.",
        ValueError("bad"),
    ),
}


@pytest.mark.parametrize("case", sorted(PYTHON2_PLAIN))
def test_python2_plain_data_is_clean(case: str) -> None:
    data, expected = PYTHON2_PLAIN[case]
    loaded = pickle.loads(data, encoding="latin1")  # benign stdlib names only
    assert repr(loaded) == repr(expected)
    assert not loud(data, "medium"), loud(data, "medium")


@pytest.mark.parametrize(
    ("data", "written", "resolved"),
    [
        (PYTHON2_PLAIN["xrange p2"][0], "__builtin__.xrange", "builtins.range"),
        (P2_POINT + b"(dp5\nS'x'\np6\nI1\nsb.", "copy_reg._reconstructor", "copyreg._reconstructor"),
        (
            b"ccopy_reg\n_reconstructor\np0\n(c__main__\nMyLong\np1\nc__builtin__\nlong\np2\nL5L\ntp3\nRp4\n.",
            "__builtin__.long",
            "builtins.int",
        ),
    ],
)
def test_python2_names_are_judged_as_resolved(data: bytes, written: str, resolved: str) -> None:
    result = read_pickle(data)
    assert (written, resolved) in {(g.qualname, g.resolved_qualname) for g in result.globals}
    assert not loud(data), loud(data)  # a __main__ class is medium, the Python 2 names nothing


@pytest.mark.parametrize(
    ("data", "severity", "evidence"),
    [
        (b"c__builtin__\neval\n(S'1+1'\ntR.", "critical", "__builtin__.eval (= builtins.eval)"),
        (b"ccommands\ngetoutput\n(S'id'\ntR.", "critical", "commands.getoutput (= subprocess.getoutput)"),
        (b"ccPickle\nloads\n(S'x'\ntR.", "critical", "cPickle.loads (= pickle.loads)"),
        (b"\x80\x02c__builtin__\nintern\n(U\x01xtR.", "critical", "__builtin__.intern (= sys.intern)"),
        (b"\x80\x02c__builtin__\nreduce\n(NNtR.", "high", "__builtin__.reduce (= functools.reduce)"),
        (b"curllib\nurlopen\n(S'http://x'\ntR.", "critical", "urllib.urlopen (= urllib.request.urlopen)"),
    ],
)
def test_python2_hostile_names_still_caught(data: bytes, severity: str, evidence: str) -> None:
    assert (severity, evidence) in {(f.severity, f.evidence) for f in findings(data)}


def test_the_mapping_follows_the_protocol_in_force(referee: Referee) -> None:
    # PROTO may come anywhere and C's find_class maps names only while it is below 3
    late_low = b"\x80\x04\x80\x02c__builtin__\nxrange\n(K\x03tR."
    late_high = b"\x80\x02\x80\x03c__builtin__\nxrange\n."
    assert [g.resolved_qualname for g in read_pickle(late_low).globals] == ["builtins.range"]
    assert [g.resolved_qualname for g in read_pickle(late_high).globals] == ["__builtin__.xrange"]
    assert referee.ask(late_low)["joined"][0]["resolved"] == [["builtins", "range"]]
    assert referee.ask(late_high)["joined"][0]["resolved"] == [["__builtin__", "xrange"]]
    assert not loud(late_low)


# --- plain data pickled by CPython itself --------------------------------------------------------

PLAIN_DATA: list[Any] = [
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    datetime.date(2024, 2, 29),
    datetime.time(12, 30),
    datetime.timedelta(days=3, seconds=4),
    decimal.Decimal("-1.25"),
    decimal.Decimal("NaN"),
    fractions.Fraction(3, 7),
    collections.OrderedDict(a=1, b=[2, 3]),
    collections.defaultdict(list, a=[1]),
    collections.defaultdict(int),
    collections.Counter("hello"),
    collections.deque([1, 2], maxlen=5),
    {1, 2, 3},
    frozenset({"a", "b"}),
    1 + 2j,
    bytearray(b"\x00\xff"),
    b"\x00bytes\xff",
    range(2, 20, 3),
    slice(1, None, 2),
    Ellipsis,
    NotImplemented,
    10**40,
    -(2**70),
    float("nan"),
    "caf\u00e9 \ud800 surrogate",
    uuid.UUID(int=12345),
    [[1], {"k": (None, True)}],
]


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("fix_imports", [True, False])
def test_plain_data_is_clean_at_every_protocol(protocol: int, fix_imports: bool) -> None:
    shared = [1, 2]
    recursive: list[Any] = [shared, shared]
    recursive.append(recursive)
    for value in [*PLAIN_DATA, recursive]:
        data = pickle.dumps(value, protocol=protocol, fix_imports=fix_imports)
        assert not loud(data, "medium"), (value, protocol, loud(data, "medium"))


# --- quantized torch tensors ---------------------------------------------------------------------


def _quantized_state(torch: Any) -> dict[str, Any]:
    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    return {
        "per_tensor_quint8": torch.quantize_per_tensor(x, 0.01, 10, torch.quint8),
        "per_tensor_qint8": torch.quantize_per_tensor(x, 0.02, 0, torch.qint8),
        "per_tensor_qint32": torch.quantize_per_tensor(x, 0.001, 0, torch.qint32),
        "per_channel_qint8": torch.quantize_per_channel(
            x, torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3, dtype=torch.long), 0, torch.qint8
        ),
        "per_channel_quint8_axis1": torch.quantize_per_channel(
            x, torch.full((4,), 0.05), torch.full((4,), 3, dtype=torch.long), 1, torch.quint8
        ),
        "per_channel_float_qparams": torch.quantize_per_channel(
            x, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.0, -0.5]), 0, torch.quint8
        ),
        "plain": x,
    }


@pytest.mark.parametrize("zip_format", [True, False])
def test_quantized_checkpoints_are_clean_like_weights_only(tmp_path: Path, zip_format: bool) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "quantized.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized dtypes are deprecated in torch 2.13
        state = _quantized_state(torch)
        torch.save(state, path, _use_new_zipfile_serialization=zip_format)
        loaded = torch.load(path, weights_only=True)  # torch's own restricted loader accepts it
    assert loaded["per_channel_qint8"].qscheme() == torch.per_channel_affine
    result = scan_file(path)
    assert result.verdict("high") == "clean"
    assert not [f for f in result.findings if rank(f.severity) >= rank("medium")], result.findings


def test_a_qtensor_with_a_hostile_quantizer_is_caught() -> None:
    data = (
        Asm(2)
        .global_("torch._utils", "_rebuild_qtensor")
        .mark()
        .none()
        .int_(0)
        .empty_tuple()
        .empty_tuple()
        .global_("os", "system")
        .str_("id")
        .tuple2()
        .raw(b"\x89")
        .none()
        .tuple_()
        .reduce()
        .stop()
        .build_bytes()
    )
    assert worst(data) == "critical"


# --- frames that lie -----------------------------------------------------------------------------


def _framed(body: bytes, claimed: int | None = None) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body) if claimed is None else claimed) + body


def lying_frame_payload() -> bytes:
    """The issue's trick: read as one run (pickle.loads, a static reader) it is one inert BINBYTES
    blob; C reading a stream without peek() (torch.load's zip records) drops the byte left in the
    frame, reads the length from after it (0) and runs the "blob"."""
    payload = b"0cos\nsystem\n(S'echo hidden'\ntR"
    length = 1 + len(payload)  # the blob: one zero byte, then the payload
    return b"\x80\x04" + _framed(b"B" + bytes([length])) + b"\x00\x00\x00" + b"\x00" + payload + b"."


def test_a_frame_that_ends_inside_an_opcode_hides_a_call(referee: Referee) -> None:
    data = lying_frame_payload()
    answer = referee.ask(data)
    assert answer["joined"][0]["asked"] == []  # pickle.loads: a bytes object
    assert answer["buffered"][0]["asked"] == [["os", "system"]]  # pickle.load(io.BytesIO): a call
    joined = read_pickle_lenient(io.BytesIO(data))
    assert not joined.globals and isinstance(joined.value, bytes)
    assert [d.kind for d in joined.differentials] == ["frame-straddle"]
    found = findings(data)
    assert {"pickle-frame-mismatch", "pickle-dangerous-global"} <= {f.rule for f in found}
    critical = next(f for f in found if f.severity == "critical")
    assert "torch.load reads a zip record" in critical.location


def test_a_frame_longer_than_the_data(referee: Referee) -> None:
    payload = b"cos\nsystem\n(S'echo x'\ntR."
    data = b"\x80\x04" + _framed(payload, claimed=4096)
    answer = referee.ask(data)
    assert answer["joined"][0]["asked"] == [] and answer["joined"][0]["error"]  # C refuses the FRAME

    asked: list[tuple[str, str]] = []

    class Recording(pickle._Unpickler):  # type: ignore[name-defined]  # the pure-Python unpickler (dill's)
        def find_class(self, module: str, name: str) -> Any:
            asked.append((module, name))
            return lambda *args: None

    Recording(io.BytesIO(data)).load()
    assert asked == [("os", "system")]  # ... and pickle._Unpickler runs what follows
    result = read_pickle_lenient(io.BytesIO(data))
    assert result.cpython_stop and not result.asked()
    assert {"pickle-frame-mismatch", "pickle-dangerous-global"} <= {f.rule for f in findings(data)}


def test_nested_frames_and_frames_past_stop() -> None:
    nested = b"\x80\x04" + _framed(b"N" + _framed(b"0N") + b"0N") + b"."
    past_stop = b"\x80\x04" + _framed(b"N.", claimed=6) + b"\x00" * 8
    for data, kind in ((nested, "frame-nested"), (past_stop, "frame-past-stop")):
        result = read_pickle_lenient(io.BytesIO(data))
        assert kind in [d.kind for d in result.differentials], (kind, result.differentials)
        assert "pickle-frame-mismatch" in {f.rule for f in findings(data)}


def test_honest_frames_are_not_flagged() -> None:
    big = [bytes(range(256)) * 400 for _ in range(6)]  # payloads written outside frames
    values = [list(range(50_000)), {"blob": big, "text": "x" * 200_000}]
    for value in values:
        for protocol in (4, 5):
            data = pickle.dumps(value, protocol=protocol)
            result = read_pickle_lenient(io.BytesIO(data))
            assert not result.differentials and result.error is None


# --- arguments and stack operations the way C reads them ----------------------------------------

PAYLOAD = b"cos\nsystem\n(S'id'\ntR"


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        (b"I0x10\n0", "INT in base 0 (hex)"),
        (b"I010\n0", "INT with a leading zero is octal to C's strtol"),
        (b"I5\x00junk\n0", "C stops at a NUL byte"),
        (b"F1.5\x00junk\n0", "FLOAT too"),
        (b"L0x1fL\n0", "LONG in base 0"),
        (b"V" + b"x" * 100_000 + b"\n0", "a text argument far over 64 KiB"),
        (b"\x8b" + struct.pack("<i", 70_000) + b"\x01" * 70_000 + b"0", "LONG4 of 70,000 bytes"),
        (b"(Nl" + b"K\x00N" + b"s0", "SETITEM on a list (list[0] = None)"),
        (b")(e0", "APPENDS of nothing onto a tuple"),
        (b"X\x03\x00\x00\x00\xed\xa0\x800", "a lone surrogate (surrogatepass)"),
        (b"Np1_0\n0", "PUT index with an underscore"),
        (b"S'a\\lb'\n0", "an unknown escape in STRING is kept (with a DeprecationWarning)"),
    ],
)
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_payload_after_arguments_c_accepts(referee: Referee, prefix: bytes, why: str) -> None:
    data = b"\x80\x02" + prefix + PAYLOAD + b"."
    assert referee.ask(data)["joined"][0]["asked"] == [["os", "system"]], why
    assert worst(data) == "critical", why


def test_memoize_counts_the_slots_written(referee: Referee) -> None:
    # MEMOIZE stores at len(memo), not at the highest index + 1 nor at a count of MEMOIZEs
    data = (
        Asm(4)
        .str_("os")
        .put(5)
        .pop()
        .str_("system")
        .memoize()  # slot 1: one slot (5) is written
        .pop()
        .get(5)
        .get(1)
        .stack_global()
        .str_("id")
        .tuple1()
        .reduce()
        .stop()
        .build_bytes()
    )
    assert referee.ask(data)["joined"][0]["asked"] == [["os", "system"]]
    assert worst(data) == "critical"


def test_item_assignment_into_an_imported_dict(referee: Referee) -> None:
    # copyreg.dispatch_table is a dict: SETITEM changes it in place and the load goes on
    data = Asm(4).global_("copyreg", "dispatch_table").str_("k").none().setitem().pop().raw(PAYLOAD).stop()
    assert referee.ask(data.build_bytes())["joined"][0]["asked"] == [
        ["copyreg", "dispatch_table"],
        ["os", "system"],
    ]
    rules = {f.rule for f in findings(data.build_bytes())}
    assert {"pickle-build-on-import", "pickle-dangerous-global"} <= rules


def test_a_second_stream_without_a_header() -> None:
    # pickle.load called again runs it: STACK_GLOBAL needs no PROTO before it
    second = b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
    data = pickle.dumps({"a": 1}, protocol=4) + second
    assert any(f.severity == "critical" and "stream 2" in f.location for f in findings(data))


def test_dotted_names_need_protocol_4(referee: Referee) -> None:
    low = b"\x80\x02cos\npath.join\n."
    high = b"\x80\x04cos\npath.join\n."
    assert referee.ask(low)["joined"][0]["resolved"] == [None]
    assert referee.ask(high)["joined"][0]["resolved"] == [["os", "path.join"]]
    low_result = read_pickle_lenient(io.BytesIO(low))
    assert low_result.cpython_stop and not low_result.globals[0].resolves
    assert worst(low) == "critical"  # still judged: another loader may walk the path


def test_unhashable_keys_stop_the_load_as_in_c(referee: Referee) -> None:
    data = b"\x80\x02(]Nd" + PAYLOAD + b"."
    assert referee.ask(data)["joined"][0]["asked"] == []
    assert read_pickle_lenient(io.BytesIO(data)).error is not None
