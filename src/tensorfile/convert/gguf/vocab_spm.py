"""SentencePiece vocabularies: tokenizer.model read as protobuf, and Llama-style HF BPE (llama_hf).

The converter loads tokenizer.model with sentencepiece and asks each id for its piece, score and
type (IsUnknown / IsControl / IsUnused / IsByte). Those are the `pieces` of the ModelProto message
(field 1: piece = 1, score = 2, type = 3), so the same values come from the protobuf directly,
without the sentencepiece library.
"""

from __future__ import annotations

import re
import struct
from enum import IntEnum
from pathlib import Path
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError
from ...protowire import I32, LEN, VARINT, decode_varint
from .vocab import add_special_vocab, add_tokenizer_core, does_token_look_special, read_json


class TokenType(IntEnum):
    """SentencePieceTokenTypes of conversion/base.py (== gguf.TokenType)."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# sentencepiece ModelProto.SentencePiece.Type → the converter's token type (USER_DEFINED → NORMAL:
# the converter only asks IsUnknown / IsControl / IsUnused / IsByte).
_SPM_TYPES = {1: TokenType.NORMAL, 2: TokenType.UNKNOWN, 3: TokenType.CONTROL, 4: TokenType.NORMAL}
_SPM_TYPES.update({5: TokenType.UNUSED, 6: TokenType.BYTE})


class NotLlamaHf(Exception):
    """tokenizer.json is not a Llama-style BPE (the converter's FileNotFoundError / TypeError)."""


def read_pieces(path: Path) -> list[tuple[str, float, TokenType]]:
    """(piece, score, converter token type) of each id of a SentencePiece model file."""
    data = path.read_bytes()
    pieces = []
    try:
        for number, wire, start, end in _fields(data, 0, len(data)):
            if number == 1 and wire == LEN:
                pieces.append(_piece(data, start, end))
    except (FormatError, UnicodeDecodeError, struct.error) as exc:
        raise FormatError(f"not a SentencePiece model ({exc})", path) from None
    if not pieces:
        raise FormatError("SentencePiece model has no pieces", path)
    return pieces


def _fields(data: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """(number, wire type, payload start, payload end or varint value) of a message's fields."""
    out = []
    while pos < end:
        key, pos = decode_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = decode_varint(data, pos)
            out.append((number, wire, value, value))
        elif wire == LEN:
            length, pos = decode_varint(data, pos)
            if pos + length > end:
                raise FormatError("protobuf field runs past its message")
            out.append((number, wire, pos, pos + length))
            pos += length
        elif wire in (I32, 1):
            size = 4 if wire == I32 else 8
            out.append((number, wire, pos, pos + size))
            pos += size
        else:
            raise FormatError(f"protobuf wire type {wire}")
    if pos != end:
        raise FormatError("protobuf message cut short")
    return out


def _piece(data: bytes, start: int, end: int) -> tuple[str, float, TokenType]:
    piece, score, kind = "", 0.0, 1  # proto2 defaults (type NORMAL)
    for number, wire, a, b in _fields(data, start, end):
        if number == 1 and wire == LEN:
            piece = data[a:b].decode("utf-8")
        elif number == 2 and wire == I32:
            score = struct.unpack("<f", data[a:b])[0]
        elif number == 3 and wire == VARINT:
            kind = a
    return piece, score, _SPM_TYPES.get(kind, TokenType.NORMAL)


def _find(hparams: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((hparams[k] for k in keys if k in hparams), None)


def create_vocab_sentencepiece(
    folder: Path, hparams: dict[str, Any]
) -> tuple[list[bytes], list[float], list[int]]:
    """TextModel._create_vocab_sentencepiece: pieces, then added_tokens.json, then the config's
    added_tokens_decoder, over a vocab_size-long list of [PAD{i}] placeholders."""
    pieces = read_pieces(folder / "tokenizer.model")
    vocab_size = _find(hparams, ("vocab_size_per_layer_input", "vocab_size")) or len(pieces)
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    toktypes: list[int] = [TokenType.UNUSED] * vocab_size
    for token_id, (piece, score, kind) in enumerate(pieces[:vocab_size]):
        tokens[token_id] = piece.encode("utf-8")
        scores[token_id] = score
        toktypes[token_id] = kind
    added = read_json(folder / "added_tokens.json")
    for key, token_id in (added or {}).items():
        if token_id < vocab_size:
            tokens[token_id] = key.encode("utf-8")
            scores[token_id] = -1000.0
            toktypes[token_id] = TokenType.USER_DEFINED
    config = read_json(folder / "tokenizer_config.json")
    for key, data in ((config or {}).get("added_tokens_decoder") or {}).items():
        token_id, token = int(key), data["content"]
        if token_id >= vocab_size:
            continue
        if data.get("special") or does_token_look_special(token):
            toktypes[token_id] = TokenType.CONTROL
        else:
            token = token.replace("\u2581", " ")  # pre-normalize user-defined spaces
            toktypes[token_id] = TokenType.USER_DEFINED
        scores[token_id] = -1000.0
        tokens[token_id] = token.encode("utf-8")
    return tokens, scores, toktypes


def set_vocab_sentencepiece(writer: gguf.GGUFWriter, folder: Path, hparams: dict[str, Any]) -> None:
    """TextModel._set_vocab_sentencepiece."""
    tokens, scores, toktypes = create_vocab_sentencepiece(folder, hparams)
    add_tokenizer_core(writer, "llama", "default", tokens, toktypes, scores)
    add_special_vocab(writer, folder, n_vocab=len(tokens))


def set_vocab_phi3(writer: gguf.GGUFWriter, folder: Path, hparams: dict[str, Any]) -> None:
    """Phi3MiniModel.set_vocab's SentencePiece branch (its own variant of the loop above)."""
    path = folder / "tokenizer.model"
    if not path.is_file():
        raise FormatError("Phi-3 needs tokenizer.model", folder)
    pieces = read_pieces(path)
    vocab_size = hparams.get("vocab_size", len(pieces))
    if len(pieces) > vocab_size:  # the converter's IndexError
        raise FormatError(f"tokenizer.model has {len(pieces)} pieces, over vocab_size {vocab_size}", folder)
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    toktypes: list[int] = [TokenType.UNUSED] * vocab_size
    for token_id, (piece, score, kind) in enumerate(pieces):
        tokens[token_id], scores[token_id], toktypes[token_id] = piece.encode("utf-8"), score, kind
    for key, token_id in (read_json(folder / "added_tokens.json") or {}).items():
        if token_id < vocab_size:
            tokens[token_id], scores[token_id], toktypes[token_id] = (
                key.encode(),
                -1000.0,
                TokenType.USER_DEFINED,
            )
    config = read_json(folder / "tokenizer_config.json") or {}
    doc = read_json(folder / "tokenizer.json") or {}
    entries = [(int(k), v) for k, v in (config.get("added_tokens_decoder") or {}).items()]
    entries += [(int(v["id"]), v) for v in doc.get("added_tokens", [])]
    for token_id, data in entries:
        if not -vocab_size <= token_id < vocab_size:
            raise FormatError(f"added token id {token_id} is outside vocab_size {vocab_size}", folder)
        tokens[token_id] = data["content"].encode("utf-8")
        scores[token_id] = -1000.0
        toktypes[token_id] = TokenType.CONTROL if data.get("special") else TokenType.USER_DEFINED
    add_tokenizer_core(writer, "llama", "default", tokens, toktypes, scores)
    add_special_vocab(writer, folder, n_vocab=len(tokens))


def set_vocab_llama_hf(writer: gguf.GGUFWriter, folder: Path) -> None:
    """TextModel._set_vocab_llama_hf (gguf-py's LlamaHfVocab): a BPE tokenizer.json with byte
    fallback, as transformers converts Llama's SentencePiece model. NotLlamaHf otherwise."""
    from .vocab_bpe import load_hf_tokenizer

    doc = read_json(folder / "tokenizer.json")
    if doc is None:
        raise NotLlamaHf
    model = doc.get("model")
    if not isinstance(model, dict) or "type" not in model:
        raise FormatError("tokenizer.json has no model type", folder)
    if model["type"] == "BPE" and model.get("ignore_merges", False) and not model.get("byte_fallback", True):
        raise NotLlamaHf  # Llama 3: BpeVocab
    decoder = doc.get("decoder") or {}
    if model["type"] != "BPE" or not model.get("byte_fallback", False) or decoder.get("type") != "Sequence":
        raise NotLlamaHf
    tok = load_hf_tokenizer(folder)
    base = tok.vocab_size_base
    added = [(text, i) for text, i in sorted(tok.added_vocab().items(), key=lambda x: x[1]) if i >= base]
    vocab = tok.vocab()
    try:
        specials = {text: vocab[text] for text in tok.all_special_tokens()}
    except KeyError as exc:
        raise UnsupportedError(
            f"special token {exc} is not in the vocab (the converter fails too)", folder
        ) from None
    special_ids = set(tok.all_special_ids())
    reverse = {i: text for text, i in vocab.items()}
    tokens: list[bytes] = []
    toktypes: list[int] = []
    for token_id in range(base):
        if token_id not in reverse:
            raise UnsupportedError(f"the vocab has no token {token_id} (the converter fails too)", folder)
        text = reverse[token_id].encode("utf-8")
        tokens.append(text)
        toktypes.append(_hf_token_type(token_id, text, special_ids))
    for text, _ in added:
        tokens.append(text.encode("utf-8"))
        if text in specials:
            toktypes.append(_hf_token_type(specials[text], b"", special_ids))
        else:
            toktypes.append(TokenType.USER_DEFINED)
    add_tokenizer_core(writer, "llama", "default", tokens, toktypes, [-1000.0] * len(tokens))
    add_special_vocab(writer, folder, n_vocab=len(tokens))


def _hf_token_type(token_id: int, text: bytes, special_ids: set[int]) -> int:
    if re.fullmatch(rb"<0x[0-9A-Fa-f]{2}>", text):
        return TokenType.BYTE
    return TokenType.CONTROL if token_id in special_ids else TokenType.NORMAL
