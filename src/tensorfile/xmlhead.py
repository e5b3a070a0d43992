"""The root element of an XML document, read from its first bytes only.

PMML and OpenVINO IR are XML; telling them apart needs the root tag, its namespace and its
attributes, not the whole (possibly huge) document. External entities are never resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.parsers import expat


@dataclass(frozen=True)
class XmlRoot:
    tag: str  # local name
    namespace: str | None
    attributes: dict[str, str]
    children: tuple[str, ...]  # local names of the first few child elements


class _Done(Exception):
    pass


def read_root(head: bytes, max_children: int = 8) -> XmlRoot | None:
    """The root element of the XML in `head`, or None when `head` does not start an XML document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return None
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    found: dict[str, object] = {}
    depth = 0
    children: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if "root" not in found:
            found["root"] = (name, attrs)
        elif depth == 2:
            children.append(name.rsplit("}", 1)[-1])
            if len(children) >= max_children:
                raise _Done

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(head, False)
    except _Done:
        pass
    except expat.ExpatError:
        if "root" not in found:
            return None
    root = found.get("root")
    if root is None:
        return None
    name, attrs = root  # type: ignore[misc]
    namespace, _, local = name.rpartition("}")
    return XmlRoot(local, namespace or None, dict(attrs), tuple(children))
