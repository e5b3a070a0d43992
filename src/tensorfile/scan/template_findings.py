"""The template rules' wording, and how the hits of one template become findings.

A check records a `Hit` (rule, severity, evidence, line) for every place it matches; `group_hits`
turns them into one finding per rule and template, with the first few pieces of evidence.
"""

from __future__ import annotations

from .findings import Finding, rank

MAX_EVIDENCE = 4  # pieces of evidence shown per finding

Hit = tuple[str, str, str, int]  # rule, severity, evidence, line

MESSAGES = {
    "template-dunder-access": (
        "The template reaches Python internals (double-underscore names such as __globals__): the classic"
        " Jinja sandbox escape that runs commands when the template is rendered (e.g. CVE-2024-34359)."
    ),
    "template-global-escape": (
        "The template digs into a built-in Jinja/Flask object (cycler, lipsum, self, config, request, …),"
        " a known route from a template to Python's os module."
    ),
    "template-python-module": (
        "The template uses a Python module (os, subprocess, sys, …) as an object; a template can only get"
        " one through a sandbox escape."
    ),
    "template-python-builtin": (
        "The template calls a Python built-in (eval, exec, getattr, open, …) that no chat template needs;"
        " where a renderer exposes it, it runs code or reads files."
    ),
    "template-dangerous-attribute": (
        "The template reaches an attribute that only exists to run commands or reach modules and stack "
        "frames (popen, system, environ, modules, f_globals, …)."
    ),
    "template-dynamic-attribute": (
        "The template looks up an attribute whose name is computed when it is rendered, which hides what "
        "it reaches."
    ),
    "template-constructed-name": (
        "The template builds a Python-internal or dangerous name out of pieces (joining, formatting, "
        "reversing strings): obfuscation used to slip sandbox escapes past filters."
    ),
    "template-char-construction": (
        'The template makes characters from numeric codes ("%c"|format(95), chr(95)), a way to spell '
        "forbidden names without writing them."
    ),
    "template-escaped-name": (
        "The template writes letters or underscores as escape codes ('\\x5f' for '_'), a way to hide "
        "forbidden names."
    ),
    "template-char-harvest": (
        "The template turns a built-in object into text to pick characters out of it, a trick to spell "
        "forbidden names."
    ),
    "template-dunder-string": (
        "The template holds a Python-internal name (such as '__class__') as a string."
    ),
    "template-encoded-payload": (
        "The template carries an encoded (base64/hex) string that decodes to Python code or internal names."
    ),
    "template-decode-filter": (
        "The template uses a filter that decodes or runs data (b64decode, eval, shell, …); standard chat "
        "renderers have no such filter."
    ),
    "template-format-attribute": (
        "A format string in the template reads attributes of its arguments ('{0.__class__}'.format(x)), a"
        " known way around the sandbox."
    ),
    "template-private-attribute": (
        "The template reads a private attribute (a name starting with '_'); the Jinja sandbox forbids it "
        "and no chat template needs it."
    ),
    "template-global-reference": (
        "The template passes a built-in Jinja/Flask object around instead of calling it, usually a first "
        "step of a sandbox escape."
    ),
    "template-include": (
        "The template pulls in other template files ({% include/import/extends %}); with a file loader "
        "this reads local files."
    ),
    "template-unparseable": (
        "This template does not parse as Jinja2, so it could not be fully checked (the renderer fails on "
        "it too); it was only searched as text for known attacks."
    ),
    "template-too-large": (
        "Too much template text to parse; it was only searched as text for known attacks."
    ),
    "template-json-unreadable": (
        "Not valid JSON (loaders refuse it); it was only searched as text for template attacks."
    ),
    "yaml-python-tag": (
        "A YAML Python tag: yaml.unsafe_load (or yaml.load with an unsafe Loader) imports and calls the "
        "named Python object while reading this file."
    ),
}
_ADVICE_TEMPLATE = (
    "do not render this template; replace it with the chat template published with the original model"
)
_ADVICE = {
    "template-unparseable": "check the template by hand before using it",
    "template-too-large": "check the template by hand before using it",
    "template-json-unreadable": "check the file by hand; loaders refuse invalid JSON",
    "yaml-python-tag": "load YAML with yaml.safe_load only, and do not use this file",
}


def short(text: str, limit: int = 200) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rule_finding(rule: str, severity: str, evidence: str, location: str) -> Finding:
    """A finding of `rule` with its message and advice."""
    return Finding(rule, severity, MESSAGES[rule], evidence, location, _ADVICE.get(rule, _ADVICE_TEMPLATE))


def group_hits(hits: list[Hit], where: str) -> list[Finding]:
    """One finding per rule: the worst severity, the first few distinct pieces of evidence."""
    by_rule: dict[str, list[Hit]] = {}
    for hit in hits:
        by_rule.setdefault(hit[0], []).append(hit)
    found: list[Finding] = []
    for rule, items in by_rule.items():
        severity = max((h[1] for h in items), key=rank)
        line = min(h[3] for h in items if h[1] == severity)
        evidence: list[str] = []
        for h in items:
            if h[2] not in evidence and len(evidence) < 64:
                evidence.append(h[2])
        # a chain a.__class__.__mro__ hits at each link: keep the longest spelling
        evidence = [e for e in evidence if not any(o != e and o.startswith(e) for o in evidence)]
        text = "; ".join(evidence[:MAX_EVIDENCE])
        if len(evidence) > MAX_EVIDENCE:
            text += f" (+{len(evidence) - MAX_EVIDENCE} more)"
        location = f"{where}, line {line}" if where else f"line {line}"
        found.append(rule_finding(rule, severity, text, location))
    return worst_first(found)


def worst_first(found: list[Finding]) -> list[Finding]:
    """Most severe first (stable among equals)."""
    return sorted(found, key=lambda f: -rank(f.severity))
