"""Tree ensembles: node statistics decoded inline from windows of the TreeEnsembleParameters bytes."""

from __future__ import annotations

import struct
from typing import Any

from ...errors import FormatError
from ...protowire import I32, I64, LEN, VARINT, MessageReader, decode_varint

_SCAN_WINDOW = 1 << 20


def read_tree_ensemble(reader: MessageReader) -> dict[str, Any]:
    """Counts for a tree ensemble: its nodes are the model, so they are summarised, not listed."""
    out: dict[str, Any] = {}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            out.update(_tree_nodes(reader.submessage(f)))
        elif f.number == 2 and f.wire_type == VARINT:
            out["post_evaluation_transform"] = f.value
    return out


def _tree_nodes(reader: MessageReader) -> dict[str, Any]:
    """Node statistics of a TreeEnsembleParameters, in one pass over its bytes.

    A ranker or boosted forest holds ~10^5 TreeNode messages; the generic field walk costs seconds on
    them, so nodes are decoded inline from 1 MB windows (memory stays bounded by the window).
    """
    source, pos, end = reader.source, reader.start, reader.end
    stats = _NodeStats()
    dims: int | None = None
    base: list[float] = []
    buf, buf_start = b"", pos
    while pos < end:
        i = pos - buf_start
        if len(buf) - i < 64 and buf_start + len(buf) < end:
            buf, buf_start, i = source.read_at(pos, min(_SCAN_WINDOW, end - pos)), pos, 0
        key, j = decode_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, j = decode_varint(buf, j)
            if number == 2:
                dims = value
            pos = buf_start + j
        elif wire == LEN:
            length, j = decode_varint(buf, j)
            if buf_start + j + length > end:
                raise FormatError(f"tree node at offset {pos} runs past its message", source.name)
            if number == 1 and length <= _SCAN_WINDOW // 2:
                if j + length > len(buf):  # the node straddles the window: refill from its start
                    buf, buf_start = source.read_at(pos, min(_SCAN_WINDOW, end - pos)), pos
                    j = j - i
                stats.node(buf, j, j + length, source.name)
            elif number == 1:
                stats.nodes += 1  # an absurdly long node: counted, not decoded
            elif number == 3:
                raw = source.read_at(buf_start + j, min(length, 8 * 16))
                base.extend(struct.unpack(f"<{len(raw) // 8}d", raw[: len(raw) // 8 * 8]))
            pos = buf_start + j + length
        elif wire in (I64, I32):
            if number == 3 and wire == I64 and j + 8 <= len(buf):
                base.append(struct.unpack_from("<d", buf, j)[0])
            pos = buf_start + j + (8 if wire == I64 else 4)
        else:
            raise FormatError(f"protobuf wire type {wire} in a tree ensemble at {pos}", source.name)
    return {
        "trees": len(stats.trees),
        "nodes": stats.nodes,
        "leaves": stats.leaves,
        "branch_nodes": stats.nodes - stats.leaves,
        "leaf_values": stats.leaf_values,
        "features_used": len(stats.features),
        "prediction_dimensions": dims,
        # the thresholds of the branches plus the values of the leaves: what training fitted
        "fitted_values": stats.nodes - stats.leaves + stats.leaf_values,
        "base_prediction": base[:16],
    }


class _NodeStats:
    """Counts over TreeNode messages (treeId 1, nodeBehavior 3, branchFeatureIndex 10, evaluationInfo 20)."""

    def __init__(self) -> None:
        self.nodes = self.leaves = self.leaf_values = 0
        self.trees: set[int] = set()
        self.features: set[int] = set()

    def node(self, buf: bytes, p: int, end: int, name: str) -> None:
        self.nodes += 1
        try:
            self._fields(buf, p, end, name)
        except IndexError:
            raise FormatError("tree node fields run past the node", name) from None

    def _fields(self, buf: bytes, p: int, end: int, name: str) -> None:
        while p < end:
            key = buf[p]
            if key < 0x80:  # one-byte tags cover every field but evaluationInfo and relativeHitRate
                p += 1
            else:
                key, p = decode_varint(buf, p)
            wire = key & 7
            if wire == VARINT:
                value = buf[p]
                if value < 0x80:
                    p += 1
                else:
                    value, p = decode_varint(buf, p)
                number = key >> 3
                if number == 1:
                    self.trees.add(value)
                elif number == 3 and value == 6:  # LeafNode
                    self.leaves += 1
                elif number == 10:
                    self.features.add(value)
            elif wire == I64:
                p += 8
            elif wire == LEN:
                length, p = decode_varint(buf, p)
                if key >> 3 == 20:
                    self.leaf_values += 1
                p += length
            elif wire == I32:
                p += 4
            else:
                raise FormatError(f"protobuf wire type {wire} inside a tree node", name)
        if p != end:
            raise FormatError("tree node fields run past the node", name)
