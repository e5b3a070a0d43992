"""What only serves a sandbox escape: the names, filters and spellings the template checks judge by."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Jinja's own globals and Flask's template context: classic starting points of sandbox escapes.
ESCAPE_GLOBALS = _words(
    """
    cycler joiner lipsum namespace range dict self config request session g url_for
    get_flashed_messages
    """
)
# Python modules a template could only reach through an escape; used as objects they mean one.
PY_MODULES = _words(
    """
    os sys subprocess builtins __builtins__ importlib posix nt pty socket shutil pickle marshal
    ctypes codecs io commands
    """
)
# Python built-ins a renderer never exposes to a chat template.
PY_BUILTINS = _words(
    """
    eval exec execfile compile __import__ getattr setattr delattr globals locals vars open
    breakpoint help
    """
)
CHAR_FUNCS = frozenset({"chr", "unichr"})
# Attributes that only lead to processes, modules, frames or code.
DANGEROUS_ATTRS = _words(
    """
    os sys subprocess popen popen2 Popen system spawnl spawnv spawnve execl execv execve execvp
    eval exec execfile modules environ putenv import_module builtins globals getattr setattr
    check_output check_call getoutput getstatusoutput urlopen mro func_globals func_code
    f_globals f_locals f_builtins f_back f_code gi_frame gi_code cr_frame cr_code ag_frame
    ag_code tb_frame tb_next co_code co_consts im_func im_class _module
    _TemplateReference__context
    """
)
# Item keys that are never dictionary keys of a chat (unlike 'system', 'open', 'read').
DANGEROUS_KEYS = _words(
    """
    os sys subprocess popen eval exec execfile builtins globals modules environ import_module
    getattr setattr check_output posix importlib
    """
)
# Names that, when a template *builds* them out of pieces, only serve an escape.
DANGEROUS_WORDS = DANGEROUS_ATTRS | PY_BUILTINS | PY_MODULES | {"import", "read", "write", "call", "run"}
# Filters that take an attribute name (position of the positional argument, if any).
ATTRIBUTE_FILTERS: dict[str, int | None] = {
    "map": None,
    "selectattr": 0,
    "rejectattr": 0,
    "groupby": 0,
    "sum": 0,
    "sort": 2,
    "unique": 1,
    "min": 1,
    "max": 1,
    "join": 1,
}
DECODE_FILTERS = _words(
    """
    b64decode base64decode base64_decode from_base64 frombase64 b32decode b16decode unhexlify
    unhex fromhex from_hex hex_decode decode rot13 eval exec system shell popen subprocess run
    import pickle unpickle marshal from_yaml from_pickle
    """
)
# Filters whose output on a non-string object is its repr (characters to pick from).
STRINGIFY_FILTERS = _words(
    """
    string list pprint format join first last e escape forceescape safe urlencode center
    truncate wordwrap indent trim replace lower upper title capitalize reverse batch slice
    tojson striptags
    """
)
GENERATOR_FILTERS = frozenset({"select", "reject", "selectattr", "rejectattr", "map", "batch", "slice"})

# Python's special names are lower case; "__NOT_A_NUMBER__"-style sentinels are not them.
DUNDER_RE = re.compile(r"__[a-z][a-z0-9_]*?__")
# The special names sandbox escapes walk through (from an object to its class, module, globals).
ESCAPE_DUNDER_RE = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|import|getattribute|base|bases|init|code|func|self"
    r"|closure|reduce|reduce_ex|loader|spec|dict|getitem|module|call)__"
)
_CODE_RE = re.compile(
    r"__[a-z][a-z0-9_]*__|\b(?:os|subprocess|sys|builtins|importlib)\s*\.\s*\w+"
    r"|\b(?:popen|system|eval|exec|check_output|import_module|getattr)\s*\("
    r"|\bimport\s+(?:os|subprocess|sys|socket|pty)\b"
)
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2}){8,}$")


def is_dunder(name: str) -> bool:
    """A Python special name: `__x__`, not a run of underscores."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__") and name[2:-2].strip("_") != ""


def dangerous_text(value: str) -> str | None:
    """The dangerous part of a built string: a dunder, a dangerous name, or a code fragment."""
    m = DUNDER_RE.search(value)
    if m:
        return m.group(0)
    if value.strip() in DANGEROUS_WORDS:
        return value.strip()
    m = _CODE_RE.search(value)
    return m.group(0) if m else None


def decode_payload(value: str) -> str | None:
    """A base64/hex-looking string that decodes to Python code or internal names."""
    if len(value) < 16 or len(value) > 65536:
        return None
    candidates: list[bytes] = []
    if _HEX_RE.match(value):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(binascii.unhexlify(value))
    if _BASE64_RE.match(value):
        padded = value + "=" * (-len(value) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                candidates.append(decode(padded))
    for raw in candidates:
        text = raw.decode("latin-1")
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in raw)
        if printable < 0.9 * len(raw):
            continue
        if _CODE_RE.search(text) or DUNDER_RE.search(text):
            return text
    return None
