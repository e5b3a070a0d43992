"""Templates as text: where the `{{ }}`/`{% %}` tags are, escape codes in them, and the search for
known attack names used when a template cannot (or may not) be parsed. Linear regular expressions only.
"""

from __future__ import annotations

import re
import unicodedata

from .findings import Finding
from .template_findings import MAX_EVIDENCE, Hit, group_hits, short
from .template_names import DUNDER_RE, ESCAPE_DUNDER_RE

_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}\n]{1,80}\}|[0-7]{1,3})")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_.]")
_GO_TEMPLATE = re.compile(r"\{\{-?\s*(?:\.|end\b|range\b|else\b|if\s+\.|template\b|define\b|block\b|/\*)")
_HANDLEBARS = re.compile(r"\{\{[#/>^!&]")

# Text search (templates that do not parse, or are too large to parse).
_LEX_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (ESCAPE_DUNDER_RE, "template-dunder-access", "critical"),
    (DUNDER_RE, "template-dunder-access", "high"),
    (
        re.compile(
            r"\b(?:cycler|joiner|lipsum|namespace|self|config|request|url_for|get_flashed_messages)"
            r"\s*(?:\.\s*_|\|\s*attr\b|\[)"
        ),
        "template-global-escape",
        "high",
    ),
    (
        re.compile(
            r"(?<![\w.])(?:eval|exec|execfile|compile|getattr|setattr|globals|locals|breakpoint)\s*\("
        ),
        "template-python-builtin",
        "high",
    ),
    (
        re.compile(
            r"\.\s*(?:popen|check_output|import_module|environ|f_globals|func_globals)\b|\.\s*system\s*\("
        ),
        "template-dangerous-attribute",
        "high",
    ),
    (re.compile(r"\|\s*attr\s*\("), "template-dynamic-attribute", "medium"),
    (re.compile(r"%c|\bchr\s*\(\s*\d"), "template-char-construction", "medium"),
)
_LEX_TRIGGERS = "_.([|%\\"


def search_text(text: str, where: str, *, spans_only: bool) -> list[Finding]:
    """The text fallback: known attack names inside `{{ }}`/`{% %}` (or anywhere if not spans_only)."""
    hits: list[Hit] = []
    pieces = _tag_spans(text) if spans_only or has_tag(text) else [(0, text)]
    line, counted = 1, 0
    for offset, piece in pieces:
        if not any(c in piece for c in _LEX_TRIGGERS):
            continue
        decoded = _decode_escapes(piece)
        for pattern, rule, severity in _LEX_RULES:
            m = pattern.search(decoded)
            if m is None:
                continue
            at = offset + min(m.start(), len(piece))
            if at >= counted:
                line += text.count("\n", counted, at)
                counted = at
            hits.append((rule, severity, short(m.group(0), 60), line))
    hits += escaped_names(text)
    return group_hits(hits, where)


def _decode_escapes(text: str) -> str:
    """Backslash escapes that produce identifier characters, decoded (for the text search)."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        char = _escape_char(m.group(1))
        return char if char is not None and _IDENT_CHAR.match(char) else m.group(0)

    return _ESCAPE_RE.sub(one, text)


def _escape_char(body: str) -> str | None:
    try:
        if body[0] in "xuU":
            return chr(int(body[1:], 16))
        if body[0] == "N":
            return unicodedata.lookup(body[2:-1])
        return chr(int(body, 8))
    except (ValueError, KeyError, OverflowError):
        return None


def escaped_names(text: str) -> list[Hit]:
    """Escape codes spelling identifier characters inside `{{ }}`/`{% %}` (first few only)."""
    if "\\" not in text:
        return []
    hits: list[Hit] = []
    for offset, piece in _tag_spans(text):
        if "\\" not in piece:
            continue
        for m in _ESCAPE_RE.finditer(piece):
            char = _escape_char(m.group(1))
            if char is not None and _IDENT_CHAR.match(char):
                line = text.count("\n", 0, offset + m.start()) + 1
                hits.append(("template-escaped-name", "high", f"{m.group(0)} = {char!r}", line))
                break
        if len(hits) >= MAX_EVIDENCE:
            break
    return hits


def has_tag(text: str) -> bool:
    """Whether the text holds a complete `{{ … }}` or `{% … %}` tag."""
    i = text.find("{{")
    if i >= 0 and text.find("}}", i + 2) >= 0:
        return True
    i = text.find("{%")
    return i >= 0 and text.find("%}", i + 2) >= 0


def _tag_spans(text: str, limit: int = 100_000) -> list[tuple[int, str]]:
    """`{{ … }}` and `{% … %}` pieces with their offsets; linear in the text."""
    spans: list[tuple[int, str]] = []
    pos = 0
    a = text.find("{{")
    b = text.find("{%")
    while len(spans) < limit:
        if 0 <= a < pos:
            a = text.find("{{", pos)
        if 0 <= b < pos:
            b = text.find("{%", pos)
        if a < 0 and b < 0:
            break
        start = a if b < 0 or 0 <= a < b else b
        end = text.find("}}" if start == a else "%}", start + 2)
        if end < 0:
            if start == a:  # no "}}" anywhere after: only {% … %} pieces can follow
                a = -1
                pos = start + 2
                continue
            b = -1
            pos = start + 2
            continue
        spans.append((start, text[start : end + 2]))
        pos = end + 2
    return spans


def other_template_language(text: str) -> bool:
    """Go templates (Ollama) and Handlebars/Mustache use {{ }} too; they cannot run Python."""
    return bool(_GO_TEMPLATE.search(text[: 1 << 20]) or _HANDLEBARS.search(text[: 1 << 20]))
