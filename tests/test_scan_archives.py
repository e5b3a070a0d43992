"""The archive walker: members and heads out of zip/tar/7z/compressed streams, hostile zips included.

Benign archives are written by the real libraries (zipfile, tarfile, py7zr, gzip, torch.save);
hostile ones are byte edits of those or come from the tiny zip writer below. The pickle payload is
a benign `{'a': 1}` written out as bytes: nothing here pickles or unpickles a live object.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorfile.errors import FormatError, UnsupportedError
from tensorfile.picklevm import read_pickle_stream
from tensorfile.scan import archive_streams
from tensorfile.scan.archive_context import Limits, Member
from tensorfile.scan.archive_sniff import archive_kind
from tensorfile.scan.archives import INCOMPLETE_RULES, walk_archive, walk_archive_stream, walk_member
from tensorfile.scan.findings import Finding

from .conftest import ReadCounter

# {'a': 1} as protocol 4, byte for byte.
PAYLOAD = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
BIG = bytes(range(256)) * 1024  # 256 KiB, more than one head


def walk(path: Path, limits: Limits | None = None, read: bool = True) -> tuple[list[Member], list[Finding]]:
    """Walk like the scanner does: read each member before asking for the next."""
    members: list[Member] = []
    findings: list[Finding] = []
    kind = archive_kind(path.read_bytes()[: 64 * 1024])
    assert kind is not None, path
    for item in walk_archive(path, kind, limits=limits):
        if isinstance(item, Finding):
            findings.append(item)
        else:
            members.append(item)
            if read:
                with item.open() as stream:
                    item.content = stream.read()  # type: ignore[attr-defined]
    return members, findings


def rules(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f)
    return out


def by_name(members: list[Member]) -> dict[str, Member]:
    return {m.name: m for m in members}


def walk_model_members(path: Path) -> tuple[list[Member], dict[str, Member]]:
    """Walk an archive holding model/data.pkl (PAYLOAD) and model/big.bin (BIG): no findings, both
    read back whole. The members, and the same by name."""
    members, findings = walk(path)
    assert findings == []
    got = by_name(members)
    assert got["model/data.pkl"].head == PAYLOAD
    assert got["model/big.bin"].head == BIG[: 64 * 1024]
    assert got["model/big.bin"].content == BIG  # type: ignore[attr-defined]
    return members, got


# --- a tiny zip writer for hostile layouts ------------------------------------------------


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def make_zip(entries: list[dict], prefix: bytes = b"") -> bytes:
    """Each entry: name, data, and optionally method (0/8), flags, local_flags, local_name, crc,
    cd (False: local header only), comp (raw member bytes to store instead of compressing data)."""
    out = bytearray(prefix)
    central = bytearray()
    count = 0
    for e in entries:
        data = e["data"]
        method = e.get("method", 0)
        comp = e.get("comp", data if method == 0 else deflate(data))
        crc = e.get("crc", zlib.crc32(data))
        flags = e.get("flags", 0)
        lname = e.get("local_name", e["name"]).encode()
        offset = len(out) - len(prefix)
        out += struct.pack(
            "<4s2B4HL2L2H",
            b"PK\x03\x04",
            20,
            0,
            e.get("local_flags", flags),
            method,
            0,
            0x21,
            crc,
            len(comp),
            len(data),
            len(lname),
            0,
        )
        out += lname + comp
        if e.get("cd", True):
            name = e["name"].encode()
            central += struct.pack(
                "<4s4B4HL2L5H2L",
                b"PK\x01\x02",
                20,
                3,
                20,
                0,
                flags,
                method,
                0,
                0x21,
                crc,
                len(comp),
                len(data),
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            central += name
            count += 1
    cd_offset = len(out) - len(prefix)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0)
    return bytes(out)


def central_entries(data: bytes) -> dict[str, int]:
    """Offset of each central-directory record, by name (for byte edits of real zips)."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    pos, found = zf.start_dir, {}
    for _ in zf.infolist():
        nlen, xlen, clen = struct.unpack_from("<3H", data, pos + 28)
        found[data[pos + 46 : pos + 46 + nlen].decode()] = pos
        pos += 46 + nlen + xlen + clen
    return found


@pytest.fixture(scope="module")
def torch_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("torch") / "model.pt"
    torch.manual_seed(0)
    torch.save({"w": torch.randn(64, 64), "b": torch.zeros(8), "big": torch.ones(40_000)}, path)
    return path


# --- sniffing -----------------------------------------------------------------------------


def test_archive_kind_by_content() -> None:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("a.pkl")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("a.pkl", PAYLOAD)
    cases = {
        zipped.getvalue(): "zip",
        make_zip([]): "zip",  # an empty zip is only its end record
        tar.getvalue(): "tar",
        gzip.compress(tar.getvalue()): "tar",
        bz2.compress(tar.getvalue()): "tar",
        lzma.compress(tar.getvalue()): "tar",
        gzip.compress(PAYLOAD): "gzip",
        bz2.compress(PAYLOAD): "bz2",
        lzma.compress(PAYLOAD): "xz",
        lzma.compress(PAYLOAD, format=lzma.FORMAT_ALONE): "lzma",
        zlib.compress(PAYLOAD): "zlib",
        b"7z\xbc\xaf\x27\x1c\x00\x04": "7z",
    }
    for head, kind in cases.items():
        assert archive_kind(head) == kind, (kind, head[:8])
    for head in (
        b"",
        PAYLOAD,
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
        b"x = 1\nprint(x)\n" * 40,
        b"GGUF\x03\x00\x00\x00",
        os.urandom(4096),
        b"\x00" * 2048,
    ):
        assert archive_kind(head) is None, head[:16]


# --- zip: real files ----------------------------------------------------------------------


def test_torch_zip_members_and_heads(torch_zip: Path) -> None:
    members, findings = walk(torch_zip)
    assert findings == []
    zf = zipfile.ZipFile(torch_zip)
    assert [m.name for m in members] == zf.namelist()
    for m in members:
        real = zf.read(m.name)
        assert m.container == "zip"
        assert m.size == len(real)
        assert m.head == real[: 64 * 1024]
        assert m.content == real  # type: ignore[attr-defined]
        assert m.source is not None  # torch stores members: readable in place
    pkl = next(m for m in members if m.name.endswith("/data.pkl"))
    assert pkl.head.startswith(b"\x80\x02")
    with pkl.open() as stream:
        result = read_pickle_stream(stream, name=pkl.name)  # the non-executing VM reads our stream
    assert any(g.qualname.startswith("torch._utils._rebuild_tensor") for g in result.globals)


def test_zip_methods_match_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "methods.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stored.pkl", PAYLOAD, zipfile.ZIP_STORED)
        zf.writestr("deflated.pkl", PAYLOAD, zipfile.ZIP_DEFLATED)
        zf.writestr("bzip2.bin", BIG, zipfile.ZIP_BZIP2)
        zf.writestr("lzma.bin", BIG, zipfile.ZIP_LZMA)
        zf.writestr("big-deflated.bin", BIG, zipfile.ZIP_DEFLATED)
        zf.writestr("empty", b"")
        zf.writestr("folder/", b"")
        with zf.open("zip64.bin", "w", force_zip64=True) as out:
            out.write(BIG)
    members, findings = walk(path)
    assert findings == []
    got = by_name(members)
    assert "folder/" not in got
    for name in zipfile.ZipFile(path).namelist():
        if name.endswith("/"):
            continue
        real = zipfile.ZipFile(path).read(name)
        assert got[name].head == real[: 64 * 1024], name
        assert got[name].content == real, name  # type: ignore[attr-defined]
        assert got[name].size == len(real)


def test_member_streams_seek_and_readline(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    text = b"".join(b"line %d\n" % i for i in range(20_000))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("t.txt", text)
    (member,) = walk(path, read=False)[0]
    with member.open() as s:
        assert s.readline(100) == b"line 0\n"
        assert s.tell() == 7
        s.seek(100_000)
        assert s.read(10) == text[100_000:100_010]
        s.seek(3)  # backwards: the stream starts over
        assert s.read(4) == text[3:7]
        assert s.read() == text[7:]
        assert s.read(5) == b""


def test_member_read_all_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_streams, "MAX_READ", 1000)
    path = tmp_path / "c.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", BIG)
    (member,) = walk(path, read=False)[0]
    with member.open() as s:
        assert len(s.read()) == 1000
        assert len(s.read(-1)) == 1000


# --- zip: published bypasses --------------------------------------------------------------


def test_encryption_flag_bits_do_not_hide_a_member(torch_zip: Path, tmp_path: Path) -> None:
    """CVE-2025-1945: flag bits 0x1/0x20/0x40 made zipfile refuse a member torch still loads."""
    data = bytearray(torch_zip.read_bytes())
    zf = zipfile.ZipFile(torch_zip)
    name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    local = zf.getinfo(name).header_offset
    data[local + 6] |= 0x61
    data[central_entries(bytes(data))[name] + 8] |= 0x61
    path = tmp_path / "flagged.pt"
    path.write_bytes(bytes(data))
    with pytest.raises((RuntimeError, NotImplementedError, zipfile.BadZipFile)):
        zipfile.ZipFile(path).read(name)  # what a zipfile-based scanner runs into
    members, findings = walk(path)
    assert by_name(members)[name].head == zf.read(name)[: 64 * 1024]
    found = rules(findings)
    assert [f.location for f in found["archive-encryption-flag"]] == [name]
    assert found["archive-encryption-flag"][0].severity == "medium"
    assert "archive-encrypted-member" not in found
    assert not any(f.rule in INCOMPLETE_RULES for f in findings)


@pytest.mark.parametrize("method", [0, 8])
def test_really_encrypted_member_is_incomplete(tmp_path: Path, method: int) -> None:
    noise = os.urandom(300)
    path = tmp_path / "enc.zip"
    path.write_bytes(
        make_zip(
            [
                {"name": "archive/data.pkl", "data": PAYLOAD, "method": method, "flags": 1, "comp": noise},
                {"name": "notes.txt", "data": b"x" * 10, "flags": 1, "comp": os.urandom(22)},
                {"name": "ok.txt", "data": b"fine"},
            ]
        )
    )
    members, findings = walk(path)
    enc = {f.location: f for f in findings if f.rule == "archive-encrypted-member"}
    assert enc["archive/data.pkl"].severity == "high"  # a name that suggests a pickle
    assert enc["notes.txt"].severity == "medium"
    assert "archive-encrypted-member" in INCOMPLETE_RULES
    assert by_name(members)["ok.txt"].content == b"fine"  # type: ignore[attr-defined]
    # Members are still handed out: if the "encrypted" bytes were a pickle, the caller sees it.
    assert {"archive/data.pkl", "notes.txt", "ok.txt"} <= set(by_name(members))


def test_crc_mismatch_is_read_and_reported(torch_zip: Path, tmp_path: Path) -> None:
    """CVE-2025-10156: a wrong CRC made scanners skip a member that torch loads."""
    data = bytearray(torch_zip.read_bytes())
    zf = zipfile.ZipFile(torch_zip)
    name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    data[central_entries(bytes(data))[name] + 16] ^= 0xFF
    path = tmp_path / "crc.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path).read(name)
    members, findings = walk(path)
    assert by_name(members)[name].head == zf.read(name)
    (crc,) = rules(findings)["archive-crc-mismatch"]
    assert (crc.severity, crc.location) == ("low", name)


def test_crc_of_a_large_member_is_checked_while_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bigcrc.zip"
    path.write_bytes(make_zip([{"name": "big.bin", "data": BIG, "method": 8, "crc": 1234}]))
    walker = walk_archive(path, "zip")
    member = next(walker)
    assert isinstance(member, Member)  # the head alone cannot show the mismatch
    with member.open() as s:
        while s.read(1 << 16):
            pass
    rest = list(walker)  # resuming yields what the stream found
    assert [f.rule for f in rest] == ["archive-crc-mismatch"]


def test_local_name_differing_from_central_directory(tmp_path: Path) -> None:
    """CVE-2025-1944: a name in the local header unlike the central directory's."""
    path = tmp_path / "names.zip"
    path.write_bytes(
        make_zip([{"name": "archive/data.pkl", "local_name": "archive/data.txt", "data": PAYLOAD}])
    )
    members, findings = walk(path)
    assert [m.name for m in members] == ["archive/data.pkl"]  # the name torch looks up
    assert members[0].head == PAYLOAD
    (mismatch,) = rules(findings)["archive-name-mismatch"]
    assert mismatch.severity == "medium"
    assert "archive/data.txt" in mismatch.evidence


def test_local_name_edit_in_a_real_torch_zip(torch_zip: Path, tmp_path: Path) -> None:
    data = bytearray(torch_zip.read_bytes())
    zf = zipfile.ZipFile(torch_zip)
    name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    at = zf.getinfo(name).header_offset + 30
    assert data[at : at + len(name)] == name.encode()
    data[at + len(name) - 3 : at + len(name)] = b"txt"
    path = tmp_path / "renamed.pt"
    path.write_bytes(bytes(data))
    members, findings = walk(path)
    assert by_name(members)[name].head.startswith(b"\x80\x02")
    assert [f.location for f in findings if f.rule == "archive-name-mismatch"] == [name]


def test_hidden_local_only_member_is_scanned(tmp_path: Path) -> None:
    path = tmp_path / "hidden.zip"
    path.write_bytes(
        make_zip(
            [
                {"name": "visible.txt", "data": b"hello"},
                {"name": "secret/data.pkl", "data": PAYLOAD, "method": 8, "cd": False},
                {"name": "after.txt", "data": b"bye"},
            ]
        )
    )
    assert zipfile.ZipFile(path).namelist() == ["visible.txt", "after.txt"]
    members, findings = walk(path)
    got = by_name(members)
    assert got["secret/data.pkl"].head == PAYLOAD
    (hidden,) = rules(findings)["archive-hidden-member"]
    assert (hidden.severity, hidden.location) == ("medium", "secret/data.pkl")


def test_hidden_member_before_prepended_zip(tmp_path: Path) -> None:
    hidden = make_zip([{"name": "x.pkl", "data": PAYLOAD, "cd": False}])
    hidden = hidden[: hidden.index(b"PK\x05\x06")]
    path = tmp_path / "prefixed.zip"
    path.write_bytes(make_zip([{"name": "a.txt", "data": b"a"}], prefix=hidden))
    assert zipfile.ZipFile(path).namelist() == ["a.txt"]
    members, findings = walk(path)
    assert by_name(members)["x.pkl"].head == PAYLOAD
    assert by_name(members)["a.txt"].content == b"a"  # type: ignore[attr-defined]
    assert [f.location for f in findings if f.rule == "archive-hidden-member"] == ["x.pkl"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil.pkl",
        "/etc/cron.d/evil",
        "C:\\Windows\\evil.pkl",
        "..\\..\\evil.pkl",
        "a/../../evil.pkl",
        "d:x",
    ],
)
def test_zip_slip_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "slip.zip"
    path.write_bytes(make_zip([{"name": name, "data": PAYLOAD}, {"name": "ok/..x/a..b.txt", "data": b""}]))
    members, findings = walk(path)
    assert by_name(members)[name].head == PAYLOAD
    (slip,) = rules(findings)["archive-path-traversal"]
    assert (slip.severity, slip.location) == ("high", name)


def test_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    path.write_bytes(
        make_zip([{"name": "data.pkl", "data": b"first"}, {"name": "data.pkl", "data": PAYLOAD}])
    )
    members, findings = walk(path)
    assert [m.head for m in members] == [b"first", PAYLOAD]
    (dup,) = rules(findings)["archive-duplicate-name"]
    assert dup.severity == "low"


def test_unsupported_method_is_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "ppmd.zip"
    path.write_bytes(make_zip([{"name": "model.pkl", "data": PAYLOAD, "method": 98, "comp": b"\x00" * 9}]))
    members, findings = walk(path)
    assert members == []
    (f,) = findings
    assert (f.rule, f.severity) == ("archive-unsupported-method", "high")
    assert f.rule in INCOMPLETE_RULES


# --- zip: damage and limits ---------------------------------------------------------------


def test_truncated_torch_zip_recovers_members(torch_zip: Path, tmp_path: Path) -> None:
    data = torch_zip.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    members, findings = walk(path)
    names = [m.name for m in members]
    zf = zipfile.ZipFile(torch_zip)
    pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    assert names[0] == pkl  # found through its local header (sizes only in a data descriptor)
    assert members[0].head == zf.read(pkl)
    assert "archive-corrupt" in rules(findings)
    assert all(f.rule in INCOMPLETE_RULES or f.severity in ("low", "info") for f in findings)


def test_damaged_central_directory_entry(torch_zip: Path, tmp_path: Path) -> None:
    data = bytearray(torch_zip.read_bytes())
    entries = sorted(central_entries(bytes(data)).values())
    data[entries[2] : entries[2] + 4] = b"XXXX"
    path = tmp_path / "badcd.pt"
    path.write_bytes(bytes(data))
    members, findings = walk(path)
    assert sorted(m.name for m in members) == sorted(zipfile.ZipFile(torch_zip).namelist())
    assert "archive-corrupt" in rules(findings)


def test_nothing_readable_raises_format_error(tmp_path: Path, torch_zip: Path) -> None:
    for body in (torch_zip.read_bytes()[:10], b"PK\x03\x04" + b"\xff" * 5, b"PK\x05\x06" + b"\x00" * 10):
        path = tmp_path / "x.zip"
        path.write_bytes(body)
        with pytest.raises(FormatError):
            walk(path)


def test_zip_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    zeros = b"\x00" * (8 << 20)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"layer{i}.pkl", zeros)
    assert path.stat().st_size < 64 << 10
    limits = Limits(max_total=3 << 20)
    members, findings = walk(path, limits=limits)
    assert len(members[0].content) <= 3 << 20  # type: ignore[attr-defined]
    assert len(members) < 4  # the walk stopped
    (big,) = rules(findings)["archive-too-large"]
    assert big.rule in INCOMPLETE_RULES
    assert limits.exceeded


def test_member_count_cap(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    path.write_bytes(make_zip([{"name": f"f{i}", "data": b"x"} for i in range(10)]))
    members, findings = walk(path, limits=Limits(max_members=3))
    assert len(members) == 3
    assert [f.rule for f in findings] == ["archive-too-many-members"]


def test_walk_reads_only_heads(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    """A torch-like zip of 40 x 1 MiB stored members: the walk reads heads and the directory only."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "wide.pt"
    torch.save({f"l{i}": torch.zeros(256 * 1024) for i in range(40)}, path)
    reads = count_file_reads()
    start = time.perf_counter()
    members, findings = walk(path, read=False)
    elapsed = time.perf_counter() - start
    assert len(members) >= 40 and findings == []
    assert sum(reads) < len(members) * (64 << 10) + (1 << 20) < path.stat().st_size // 4
    assert elapsed < 1.0


# --- tar ----------------------------------------------------------------------------------


def make_tar(mode: str = "w", extra: list[tarfile.TarInfo] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:
        for name, data in (("model/data.pkl", PAYLOAD), ("model/big.bin", BIG)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tf.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_plain_and_compressed(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "m.tar"
    path.write_bytes(make_tar(mode))
    members, got = walk_model_members(path)
    assert {m.container for m in members} == {"tar"}
    assert (got["model/big.bin"].source is not None) == (mode == "w")


def test_tar_links_specials_and_slip(tmp_path: Path) -> None:
    def info(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.linkname = link
        return ti

    extra = [
        info("model/escape", tarfile.SYMTYPE, "../../../etc/passwd"),
        info("model/inside", tarfile.SYMTYPE, "data.pkl"),
        info("model/hard", tarfile.LNKTYPE, "/etc/shadow"),
        info("model/dev", tarfile.CHRTYPE),
        info("../outside.pkl", tarfile.REGTYPE),
    ]
    path = tmp_path / "links.tar"
    path.write_bytes(make_tar("w", extra))
    members, findings = walk(path)
    links = {f.location: f.severity for f in findings if f.rule == "archive-link-member"}
    assert links == {"model/escape": "high", "model/inside": "low", "model/hard": "high"}
    assert [f.location for f in findings if f.rule == "archive-special-member"] == ["model/dev"]
    assert [f.location for f in findings if f.rule == "archive-path-traversal"] == ["../outside.pkl"]
    assert "../outside.pkl" in by_name(members)


def test_tar_member_after_end_marker_is_hidden(tmp_path: Path) -> None:
    second = io.BytesIO()
    with tarfile.open(fileobj=second, mode="w") as tf:
        info = tarfile.TarInfo("late/data.pkl")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
    path = tmp_path / "two.tar"
    path.write_bytes(make_tar() + second.getvalue())
    with tarfile.open(path) as tf:
        assert "late/data.pkl" not in tf.getnames()  # Python's tarfile stops at the end marker
    members, findings = walk(path)
    assert by_name(members)["late/data.pkl"].head == PAYLOAD
    assert [f.location for f in findings if f.rule == "archive-hidden-member"] == ["late/data.pkl"]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_long_names_and_pax_global_header(tmp_path: Path, fmt: int) -> None:
    names = ["d/" + "x" * 150 + ".pkl", "short.pkl", "z/" * 60 + "w.pkl"]
    out = io.BytesIO()
    globals_ = {"comment": "made by a test"} if fmt == tarfile.PAX_FORMAT else None
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=globals_) as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(PAYLOAD)
            tf.addfile(info, io.BytesIO(PAYLOAD))
    path = tmp_path / "long.tar"
    path.write_bytes(out.getvalue())
    members, findings = walk(path)
    assert findings == []  # extension headers are not gaps where something hides
    assert [m.name for m in members] == names
    assert all(m.head == PAYLOAD for m in members)


def test_truncated_and_garbage_tar(tmp_path: Path) -> None:
    data = make_tar("w:gz")
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    members, findings = walk(path)
    assert by_name(members)["model/data.pkl"].head == PAYLOAD
    assert "archive-corrupt" in rules(findings)
    plain = make_tar()
    path.write_bytes(plain[: 512 * 3 + 1000])
    members, findings = walk(path)  # big.bin's header, then its data cut short
    assert "archive-corrupt" in rules(findings)
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage" * 100)
    with pytest.raises(FormatError):
        list(walk_archive(path, "tar"))


# --- single compressed streams ------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "compress", "kind"),
    [
        (".gz", gzip.compress, "gzip"),
        (".bz2", bz2.compress, "bz2"),
        (".xz", lzma.compress, "xz"),
        (".lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "lzma"),
        (".z", zlib.compress, "zlib"),
    ],
)
def test_single_streams(tmp_path: Path, suffix: str, compress, kind: str) -> None:
    path = tmp_path / f"model.pkl{suffix}"
    path.write_bytes(compress(PAYLOAD + BIG))
    members, findings = walk(path)
    assert findings == []
    (m,) = members
    assert (m.name, m.container) == ("model.pkl", kind)
    assert m.head == (PAYLOAD + BIG)[: 64 * 1024]
    assert m.content == PAYLOAD + BIG  # type: ignore[attr-defined]


def test_joblib_compressed_files(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    obj = {"weights": np.arange(100, dtype=np.float32), "name": "linear"}
    for method, kind in [("zlib", "zlib"), ("gzip", "gzip"), ("bz2", "bz2"), ("lzma", "lzma"), ("xz", "xz")]:
        path = tmp_path / f"model-{method}.joblib"
        joblib.dump(obj, path, compress=(method, 3))
        members, findings = walk(path)
        assert findings == []
        (m,) = members
        assert m.container == kind
        assert m.head.startswith(b"\x80"), method
        assert b"joblib.numpy_pickle" in m.head


def test_multi_member_gzip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "two.pkl.gz"
    path.write_bytes(gzip.compress(PAYLOAD) + gzip.compress(b"tail") + b"\x00" * 16)
    (m,), findings = walk(path)
    assert m.content == PAYLOAD + b"tail" and findings == []  # type: ignore[attr-defined]
    whole = gzip.compress(BIG)
    path.write_bytes(whole[: len(whole) // 2])
    (m,), findings = walk(path)
    assert m.head and "archive-corrupt" in rules(findings)
    path.write_bytes(whole[:12] + b"\xff" * 40)
    assert archive_kind(path.read_bytes()) is None  # does not even sniff as gzip
    with pytest.raises(FormatError):
        list(walk_archive(path, "gzip"))


# --- 7z -----------------------------------------------------------------------------------


def test_7z_members(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr")
    path = tmp_path / "m.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr(PAYLOAD, "model/data.pkl")
        z.writestr(BIG, "model/big.bin")
        z.writestr(b"", "empty.txt")
    members, got = walk_model_members(path)
    assert got["empty.txt"].head == b""
    assert {m.container for m in members} == {"7z"}


def test_7z_damage_and_missing_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    py7zr = pytest.importorskip("py7zr")
    path = tmp_path / "m.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr(BIG, "big.bin")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        walk(path)
    path.write_bytes(data)
    monkeypatch.setitem(sys.modules, "py7zr", None)
    with pytest.raises(UnsupportedError, match=r"tensorfile\[archives\]"):
        walk(path)


# --- nesting ------------------------------------------------------------------------------


def test_nested_archives_without_extracting(tmp_path: Path) -> None:
    inner = make_zip([{"name": "inner/data.pkl", "data": PAYLOAD}])
    deflated_inner = io.BytesIO()
    with zipfile.ZipFile(deflated_inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("deep.pkl", PAYLOAD)
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("stored.zip", inner, zipfile.ZIP_STORED)
        zf.writestr("deflated.zip", deflated_inner.getvalue(), zipfile.ZIP_DEFLATED)
        zf.writestr("model.pkl.gz", gzip.compress(PAYLOAD), zipfile.ZIP_STORED)
    seen: dict[str, bytes] = {}
    for m in walk(outer, read=False)[0]:
        kind = archive_kind(m.head)
        assert kind is not None
        with m.open() as s:
            assert (getattr(s, "byte_source", None) is not None) == (m.name != "deflated.zip")
        for item in walk_archive_stream(m.open, kind, f"outer.zip › {m.name}"):
            assert isinstance(item, Member)
            seen[f"{m.name}/{item.name}"] = item.head
        assert [i.name for i in walk_member(m) if isinstance(i, Member)]
    assert seen == {
        "stored.zip/inner/data.pkl": PAYLOAD,
        "deflated.zip/deep.pkl": PAYLOAD,
        "model.pkl.gz/model.pkl": PAYLOAD,
    }


def test_nested_walks_share_the_limit(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\x00" * (4 << 20))
    outer = tmp_path / "outer.tar.gz"
    with tarfile.open(outer, "w:gz") as tf:
        for i in range(3):
            info = tarfile.TarInfo(f"part{i}.zip")
            info.size = len(inner.getvalue())
            tf.addfile(info, io.BytesIO(inner.getvalue()))
    limits = Limits(max_total=6 << 20)
    total = 0
    findings = []
    for m in walk_archive(outer, "tar", limits=limits):
        if isinstance(m, Finding):
            findings.append(m)
            continue
        for item in walk_archive_stream(m.open, "zip", m.name):
            if isinstance(item, Member):
                with item.open() as s:
                    total += len(s.read())
            else:
                findings.append(item)
    assert limits.exceeded
    assert total <= 6 << 20
    assert [f.rule for f in findings] == ["archive-too-large"]


def test_nested_zip_copy_is_capped(tmp_path: Path) -> None:
    """A nested zip in a compressed member is copied to a spool, at most max_copy bytes of it."""
    inner = make_zip(
        [{"name": "first.pkl", "data": PAYLOAD}, {"name": "pad.bin", "data": os.urandom(200_000)}]
    )
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.zip", inner)
    (member,) = walk(outer, read=False)[0]
    found = list(walk_archive_stream(member.open, "zip", member.name, limits=Limits(max_copy=100_000)))
    assert "archive-too-large" in [f.rule for f in found if isinstance(f, Finding)]
    heads = {m.name: m.head for m in found if isinstance(m, Member)}
    assert heads["first.pkl"] == PAYLOAD  # recovered from the copied part through its local header


def test_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    with pytest.raises(UnsupportedError):
        list(walk_archive(path, "rar"))


# --- fuzz ---------------------------------------------------------------------------------


def _seed_archives() -> list[tuple[str, bytes]]:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("a/data.pkl", PAYLOAD, zipfile.ZIP_STORED)
        zf.writestr("b.bin", PAYLOAD * 20, zipfile.ZIP_DEFLATED)
        zf.writestr("c.bin", PAYLOAD * 5, zipfile.ZIP_BZIP2)
    small_tar = io.BytesIO()
    with tarfile.open(fileobj=small_tar, mode="w") as tf:
        for name in ("x/data.pkl", "y.bin"):
            info = tarfile.TarInfo(name)
            info.size = len(PAYLOAD)
            tf.addfile(info, io.BytesIO(PAYLOAD))
    return [
        ("zip", zipped.getvalue()),
        (
            "zip",
            make_zip(
                [{"name": "h.pkl", "data": PAYLOAD, "method": 8, "cd": False}, {"name": "v", "data": b"v"}]
            ),
        ),
        ("tar", small_tar.getvalue()[:2048]),
        ("tar", gzip.compress(small_tar.getvalue())),
        ("gzip", gzip.compress(PAYLOAD * 3)),
        ("xz", lzma.compress(PAYLOAD)),
    ]


SEEDS = _seed_archives()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, len(SEEDS) - 1),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_walk_never_crashes(tmp_path_factory: pytest.TempPathFactory, seed: int, edits, cut) -> None:
    kind, data = SEEDS[seed]
    buf = bytearray(data)
    for where, value in edits:
        buf[int(where * len(buf))] = value
    if cut is not None:
        buf = buf[: int(cut * len(buf))]
    path = tmp_path_factory.mktemp("fuzz") / "f"
    path.write_bytes(bytes(buf))
    try:
        for item in walk_archive(path, kind, limits=Limits(max_total=1 << 20)):
            if isinstance(item, Member):
                assert len(item.head) <= 64 * 1024
                with item.open() as s:
                    s.read(1 << 20)
                    s.seek(0)
                    s.readline(100)
            else:
                assert isinstance(item, Finding) and item.rule.startswith("archive-")
    except (FormatError, UnsupportedError):
        pass
