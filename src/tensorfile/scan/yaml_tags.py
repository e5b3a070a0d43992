"""YAML Python tags (`!!python/object/apply:` and kin): `yaml.unsafe_load` calls what they name."""

from __future__ import annotations

import re

from .findings import Finding
from .template_findings import rule_finding, short

# Python YAML tags that make `yaml.unsafe_load` (or an unsafe Loader) import and call things.
_PY_TAG_RE = re.compile(
    r"(?:!!|!<tag:yaml\.org,2002:|!|tag:yaml\.org,2002:)python/(object/apply|object/new|object|name|module)\b[^\s,\[\]{}'\">]*"
)
PY_TAG_BYTES = re.compile(rb"(?:!|tag:yaml\.org,2002:)python/(?:object|name|module)")
_DANGEROUS_PY_TAGS = ("object/apply", "object/new", "object", "name", "module")


def python_tags(text: str, path: str) -> list[Finding]:
    """Python tags found in the text itself (works without PyYAML; skips comment lines)."""
    if "python/" not in text:
        return []
    found: list[Finding] = []
    for m in _PY_TAG_RE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[line_start : m.start()]
        if _in_comment(before):
            continue
        line = text.count("\n", 0, m.start()) + 1
        found += python_tag_finding(m.group(0), path, line)
        if len(found) >= 20:
            break
    return found


def _in_comment(before: str) -> bool:
    if before.lstrip().startswith("#"):
        return True
    for m in re.finditer(r"(?:^|\s)#", before):
        prefix = before[: m.start()]
        if prefix.count('"') % 2 == 0 and prefix.count("'") % 2 == 0:
            return True
    return False


def python_tag_finding(tag: str, path: str, line: int) -> list[Finding]:
    """The finding for one tag, when it is one that imports or calls (none otherwise)."""
    m = re.search(r"python/(object/apply|object/new|object|name|module)\b", tag)
    if m is None or m.group(1) not in _DANGEROUS_PY_TAGS:
        return []
    return [
        rule_finding(
            "yaml-python-tag",
            "critical",
            short(tag, 120),
            f"{path}, line {line}" if path else f"line {line}",
        )
    ]
