"""Well-known non-model file types, so that 'unknown' can say what a file is instead."""

from __future__ import annotations

from ..probe import FileProbe

_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"\x7fELF", "an ELF executable or shared library"),
    (0, b"MZ", "a Windows executable"),
    (0, b"\xca\xfe\xba\xbe", "a Java class or Mach-O fat binary"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard-compressed stream"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"RIFF", "a RIFF (WAV/AVI/WebP) file"),
    (0, b"OggS", "an Ogg media file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"ID3", "an MP3 audio file"),
    (4, b"ftyp", "an MP4/QuickTime media file"),
    (0, b"PAR1", "a Parquet file"),
    (0, b"ARROW1", "an Arrow IPC file"),
    (257, b"ustar", "a tar archive"),
)


def describe(probe: FileProbe) -> str:
    """A short reason for 'unknown', naming what the bytes look like."""
    head = probe.head
    if probe.size == 0:
        return "empty file"
    for offset, magic, what in _MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return f"content is {what}, not a model file"
    if probe.zip_error:
        return probe.zip_error
    if probe.is_zip:
        names = probe.zip_names
        shown = ", ".join(names[:4]) + ("…" if len(names) > 4 else "")
        return f"zip archive with {len(names)} entries ({shown}) matching no model layout"
    if head[:2] == b"\x1f\x8b":
        return "gzip-compressed data that is not a pickle"
    if probe.size < 16:
        return f"file too small ({probe.size} bytes) for any model format"
    sample = head[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text[:2048]):
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            return "JSON text that is not a model index or config"
        if stripped.startswith("<"):
            return "XML/HTML text that is neither PMML nor OpenVINO IR"
        return "plain text, not a model file"
    return f"no known model signature (first bytes {head[:8].hex()})"
