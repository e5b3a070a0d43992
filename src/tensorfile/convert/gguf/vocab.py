"""The tokenizer keys of a GGUF file, as llama.cpp's converter writes them, without transformers.

`add_vocab` is the converter's `set_vocab()` for the supported architectures: the same keys, in
the same order, with the same types and values. The converter gets the vocab from transformers'
AutoTokenizer and sentencepiece; here tokenizer.model is read as the protobuf it is (vocab_spm.py)
and tokenizer.json with HF's `tokenizers` library, set up the way AutoTokenizer would set it up
(vocab_bpe.py). `_SpecialVocab` is gguf-py's SpecialVocab as vendored with the converter (the
gguf release on PyPI lags behind it): merges, special token ids, add_*_token flags, chat template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from string import ascii_letters, digits
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError

# Keys of the vendored gguf-py (constants.py, Keys.Tokenizer); some are newer than the PyPI release.
TOK = "tokenizer.ggml."
CHAT_TEMPLATE = "tokenizer.chat_template"
# SpecialVocab looks up `add_{typ}_token_id` / `add_add_{typ}_token` on the writer; these are the
# ones the vendored GGUFWriter has (cls, prefix, suffix, middle have none and are skipped).
_ID_KEYS = {
    "bos": TOK + "bos_token_id",
    "eos": TOK + "eos_token_id",
    "unk": TOK + "unknown_token_id",
    "sep": TOK + "seperator_token_id",
    "pad": TOK + "padding_token_id",
    "mask": TOK + "mask_token_id",
    "eot": TOK + "eot_token_id",
    "eom": TOK + "eom_token_id",
}
_ADD_KEYS = {"bos": TOK + "add_bos_token", "eos": TOK + "add_eos_token", "sep": TOK + "add_sep_token"}


def add_vocab(writer: gguf.GGUFWriter, folder: Path, arch: str, hparams: dict[str, Any]) -> None:
    """Write the keys the converter's `set_vocab()` writes for `arch` (a GGUF arch name)."""
    from . import vocab_bpe, vocab_spm

    has_spm = (folder / "tokenizer.model").is_file()
    if arch == "llama":
        _llama(writer, folder, hparams)
    elif arch in ("qwen2", "qwen3"):
        # Qwen2Model.set_vocab (Qwen3Model inherits it): SentencePiece when there is one, else BPE
        if has_spm:
            vocab_spm.set_vocab_sentencepiece(writer, folder, hparams)
        else:
            vocab_bpe.set_vocab_gpt2(writer, folder, hparams)
    elif arch in ("qwen2moe", "qwen3moe"):
        vocab_bpe.set_vocab_gpt2(writer, folder, hparams)  # TextModel.set_vocab
    elif arch == "gemma2":
        vocab_spm.set_vocab_sentencepiece(writer, folder, hparams)
        writer.add_bool(TOK + "add_space_prefix", False)
    elif arch == "gemma3":
        if has_spm:
            vocab_spm.set_vocab_sentencepiece(writer, folder, hparams)
            writer.add_bool(TOK + "add_space_prefix", False)
        else:
            vocab_bpe.set_vocab_gpt2(writer, folder, hparams)
    elif arch == "phi3":
        config = read_json(folder / "tokenizer_config.json")
        if config is not None:
            if "tokenizer_class" not in config:  # the converter indexes it without a default
                raise FormatError("tokenizer_config.json has no tokenizer_class", folder)
            if config["tokenizer_class"] == "GPT2Tokenizer":  # Phi-4
                vocab_bpe.set_vocab_gpt2(writer, folder, hparams)
                return
        vocab_spm.set_vocab_phi3(writer, folder, hparams)
    else:
        raise UnsupportedError(f"no tokenizer conversion for the GGUF architecture {arch!r}")


def _llama(writer: gguf.GGUFWriter, folder: Path, hparams: dict[str, Any]) -> None:
    """LlamaModel.set_vocab: SentencePiece, else a Llama-style HF BPE, else GPT-2 BPE (Llama 3)."""
    from . import vocab_bpe, vocab_spm

    if (folder / "tekken.json").is_file() and not (folder / "tokenizer.json").is_file():
        raise UnsupportedError("Mistral tekken tokenizers are not supported (no tokenizer.json)", folder)
    config = read_json(folder / "tokenizer_config.json")
    if config is not None:
        if (add_prefix_space := config.get("add_prefix_space")) is not None:
            writer.add_bool(TOK + "add_space_prefix", add_prefix_space)
        if config.get("tokenizer_class") == "HybridDNATokenizer":
            raise UnsupportedError("HybridDNATokenizer needs its remote code", folder)
    if (folder / "tokenizer.model").is_file():
        vocab_spm.set_vocab_sentencepiece(writer, folder, hparams)
    else:
        try:
            vocab_spm.set_vocab_llama_hf(writer, folder)
        except vocab_spm.NotLlamaHf:
            vocab_bpe.set_vocab_gpt2(writer, folder, hparams)
    vocab_size = hparams.get("vocab_size", 32000)
    if vocab_size == 32016:  # CodeLlama's infill tokens
        special = _SpecialVocab(folder, special_token_types=("prefix", "suffix", "middle", "eot"))
        for typ, tid in (("prefix", 32007), ("suffix", 32008), ("middle", 32009), ("eot", 32010)):
            special.set_special_token(typ, tid)
        special.add_to_gguf(writer)
    if vocab_size == 49152:  # granite small models
        writer.add_bool(TOK + "add_bos_token", False)


def read_json(path: Path) -> Any:
    """A JSON file's content, None when the file is absent."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"not valid JSON ({exc})", path) from None


def does_token_look_special(token: str | bytes) -> bool:
    """TextModel.does_token_look_special: added tokens some models forget to mark special."""
    text = token.decode("utf-8") if isinstance(token, (bytes, bytearray)) else token
    return (
        text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (text.startswith("<|") and text.endswith("|>"))
        or (text.startswith("<｜") and text.endswith("｜>"))
        or (text.startswith("<unused") and text.endswith(">"))
    )


def add_tokenizer_core(
    writer: gguf.GGUFWriter,
    model: str,
    pre: str,
    tokens: Sequence[str | bytes],
    toktypes: Sequence[int],
    scores: Sequence[float] | None = None,
) -> None:
    """tokenizer.ggml.model, .pre, .tokens, (.scores), .token_type, in the converter's order."""
    writer.add_string(TOK + "model", model)
    writer.add_string(TOK + "pre", pre)
    _add_array(writer, TOK + "tokens", list(tokens))
    if scores is not None:
        _add_array(writer, TOK + "scores", [float(s) for s in scores])
    _add_array(writer, TOK + "token_type", [int(t) for t in toktypes])


def _add_array(writer: gguf.GGUFWriter, key: str, values: list[Any]) -> None:
    if values:  # GGUFWriter.add_array drops empty arrays
        writer.add_array(key, values)


def _add_chat_template(writer: gguf.GGUFWriter, value: str | Sequence[Any] | None) -> None:
    """The vendored GGUFWriter.add_chat_template (None removes the key; a list names templates)."""
    if value is None:
        for kv in writer.kv_data:
            kv.pop(CHAT_TEMPLATE, None)
        return
    if not isinstance(value, str):
        default = None
        names: list[str] = []
        for choice in value:
            name = "".join(c if c in ascii_letters + digits else "_" for c in choice.get("name", ""))
            template = choice.get("template")
            if name and template is not None:
                if name == "default":
                    default = template
                else:
                    names.append(name)
                    writer.add_string(f"{CHAT_TEMPLATE}.{name}", template)
        if names:
            # the converter keeps these names in a set: its array order follows the string hash
            writer.add_array("tokenizer.chat_templates", list(dict.fromkeys(names)))
        if default is None:
            return
        value = default
    writer.add_string(CHAT_TEMPLATE, value)


class _SpecialVocab:
    """gguf-py's SpecialVocab (vendored copy): what tokenizer.json, tokenizer_config.json and
    config.json say about merges, special token ids, add_*_token and the chat template."""

    def __init__(
        self,
        path: Path,
        load_merges: bool = False,
        special_token_types: Iterable[str] | None = None,
        n_vocab: int | None = None,
    ) -> None:
        self.special_token_ids: dict[str, int] = {}
        self.add_special_token: dict[str, bool] = {}
        self.n_vocab = n_vocab
        self.load_merges = load_merges
        self.merges: list[str] = []
        self.chat_template: Any = None
        self.normalizer_lowercase: bool | None = None
        self.normalizer_strip_accents: bool | None = None
        self.special_token_types: tuple[str, ...] = tuple(
            special_token_types or ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
        )
        self._try_load_from_tokenizer_json(path)
        self._try_load_from_config_json(path)
        if self.load_merges and not self.merges:
            self._try_load_merges_txt(path)

    def add_to_gguf(self, writer: gguf.GGUFWriter) -> None:
        _add_array(writer, TOK + "merges", self.merges)
        for typ, tid in self.special_token_ids.items():
            if typ in _ID_KEYS:
                writer.add_uint32(_ID_KEYS[typ], tid)
        for typ, value in self.add_special_token.items():
            if typ in _ADD_KEYS:
                writer.add_bool(_ADD_KEYS[typ], value)
        if self.chat_template is not None:
            _add_chat_template(writer, self.chat_template)
        if self.normalizer_lowercase is not None:
            writer.add_bool(TOK + "normalizer.lowercase", self.normalizer_lowercase)
        if self.normalizer_strip_accents is not None:
            writer.add_bool(TOK + "normalizer.strip_accents", self.normalizer_strip_accents)

    def _try_load_merges_txt(self, path: Path) -> None:
        merges_file = path / "merges.txt"
        if not merges_file.is_file():
            return
        lines = merges_file.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and lines[0].strip().startswith("#"):
            lines = lines[1:]
        merges = []
        for line in lines:
            parts = line.strip().split(None, 3)
            if len(parts) == 2:  # blank and malformed lines are skipped, as there
                merges.append(f"{parts[0]} {parts[1]}")
        self.merges = merges

    def set_special_token(self, typ: str, tid: Any) -> None:
        if not isinstance(tid, int):
            return
        if tid < 0:
            raise FormatError(f"invalid value for special token type {typ}: {tid}")
        if (self.n_vocab is None or tid < self.n_vocab) and typ not in self.special_token_ids:
            self.special_token_ids[typ] = tid

    def _parse_normalizer(self, normalizer: dict[str, Any]) -> None:
        kind = normalizer.get("type")
        if kind == "Lowercase":
            self.normalizer_lowercase = True
        elif kind == "StripAccents":
            self.normalizer_strip_accents = True
        elif kind == "BertNormalizer":
            if "lowercase" in normalizer:
                self.normalizer_lowercase = normalizer["lowercase"]
            if "strip_accents" in normalizer:
                self.normalizer_strip_accents = normalizer["strip_accents"]
        elif kind == "Sequence":
            for norm in normalizer.get("normalizers", []):
                self._parse_normalizer(norm)

    def _load_merges(self, tokenizer: dict[str, Any]) -> None:
        merges = tokenizer.get("model", {}).get("merges")
        if not (isinstance(merges, list) and merges):
            return
        if isinstance(merges[0], str):
            self.merges = merges
        elif isinstance(merges[0], list) and len(merges[0]) == 2 and isinstance(merges[0][0], str):
            # transformers >= 4.45 pairs: spaces inside a part are written as U+0120 + 256
            self.merges = [
                " ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair)
                for pair in merges
            ]
        else:
            raise FormatError("unknown tokenizer merges format in tokenizer.json")

    def _try_load_from_tokenizer_json(self, path: Path) -> None:
        tokenizer = read_json(path / "tokenizer.json")
        added_tokens: list[dict[str, Any]] = []
        if tokenizer is not None:
            if self.load_merges:
                self._load_merges(tokenizer)
            if normalizer := tokenizer.get("normalizer"):
                self._parse_normalizer(normalizer)
            added_tokens = tokenizer.get("added_tokens", {})
        config = read_json(path / "tokenizer_config.json")
        if tokenizer:
            self._read_post_processor(tokenizer, config)
        if not config:
            return
        self._read_chat_template(path, config)
        for typ in self.special_token_types:
            add_entry = config.get(f"add_{typ}_token")
            if isinstance(add_entry, bool) and typ not in self.add_special_token:
                self.add_special_token[typ] = add_entry
            entry = config.get(f"{typ}_token")
            if isinstance(entry, dict):
                entry = entry.get("content")
            if not isinstance(entry, str):
                continue
            tid = next((t.get("id") for t in added_tokens if t.get("content") == entry), None)
            self.set_special_token(typ, tid)

    def _read_chat_template(self, path: Path, config: dict[str, Any]) -> None:
        alt: Any = None
        jinja = path / "chat_template.jinja"
        if jinja.is_file():
            alt = jinja.read_text(encoding="utf-8")
            extra = list((path / "additional_chat_templates").glob("*.jinja"))
            if extra:  # glob order, as the converter lists them
                alt = [{"name": "default", "template": alt}]
                alt += [{"name": p.stem, "template": p.read_text(encoding="utf-8")} for p in extra]
        elif (path / "chat_template.json").is_file():
            alt = read_json(path / "chat_template.json").get("chat_template")
        template = config.get("chat_template", alt)
        if template is None or isinstance(template, (str, list)):
            self.chat_template = template

    def _read_post_processor(self, tokenizer: dict[str, Any], config: dict[str, Any] | None) -> None:
        """add_bos/add_eos/add_sep from the post-processor (and the ids it implies), as there."""
        cfg = config or {}
        bos, cls, eos, sep = (cfg.get(k) for k in ("bos_token", "cls_token", "eos_token", "sep_token"))
        if not bos and cls and config:
            config["bos_token"] = bos = cls
        if not eos and sep and config:
            config["eos_token"] = eos = sep
        post = tokenizer.get("post_processor")
        if not post:
            return
        for proc in post.get("processors", [post]):
            kind = proc.get("type")
            if kind == "ByteLevel":
                self.add_special_token.setdefault("bos", False)
                self.add_special_token.setdefault("eos", False)
            elif kind == "RobertaProcessing":
                self.add_special_token.update(bos=True, eos=True, sep=True)
                if not cls and config:
                    config["cls_token"] = cls = proc.get("cls", [bos])[0]
                if not sep and config:
                    config["sep_token"] = sep = proc.get("sep", [eos])[0]
            elif kind == "TemplateProcessing":
                bos, cls, eos, sep = self._read_template(proc, config, bos, cls, eos, sep)

    def _read_template(
        self, proc: dict[str, Any], config: dict[str, Any] | None, bos: Any, cls: Any, eos: Any, sep: Any
    ) -> tuple[Any, Any, Any, Any]:
        """SpecialVocab's crude TemplateProcessing parse (simple templates only, like there)."""
        single, pair = proc.get("single", []), proc.get("pair", [])
        first = last = None
        if len(single) > 1:
            if first := single[0].get("SpecialToken", {}).get("id"):
                if not config:
                    bos = first
                elif first not in (bos, cls):
                    if not bos:
                        config["bos_token"] = bos = first
                    if not cls:
                        config["cls_token"] = cls = first
                self.add_special_token["bos"] = first in (bos, cls)
            if last := single[-1].get("SpecialToken", {}).get("id"):
                if not config:
                    eos = last
                elif last != eos:
                    if "eot" not in self.special_token_types:
                        self.special_token_types += ("eot",)
                        config["eot_token"] = eos
                    elif "eom" not in self.special_token_types:
                        self.special_token_types += ("eom",)
                        config["eom_token"] = eos
                    config["eos_token"] = eos = last
                self.add_special_token["eos"] = last == eos
        if not pair:
            return bos, cls, eos, sep
        start = 1 if first and pair[0].get("SpecialToken", {}).get("id") == first else 0
        stop = -1 if last and pair[-1].get("SpecialToken", {}).get("id") == last else None
        pair = pair[slice(start, stop)]
        if not pair:
            return bos, cls, eos, sep
        seq_a = pair[0].get("Sequence", {}).get("id")
        seq_b = pair[-1].get("Sequence", {}).get("id")
        middle = pair[1:-1]
        if seq_a == "A" and seq_b == "B" and middle:  # A [sep] [eos] B
            add_sep = False
            if (entry := middle[0].get("SpecialToken", {}).get("id")) and entry in (sep, eos) and not last:
                add_sep = True
            if (
                len(middle) == 2
                and (entry := middle[1].get("SpecialToken", {}).get("id"))
                and entry in (sep, eos)
            ):
                add_sep = True
            self.add_special_token["sep"] = add_sep
            if add_sep and not sep and config:
                config["sep_token"] = eos
        return bos, cls, eos, sep

    def _try_load_from_config_json(self, path: Path) -> None:
        config = read_json(path / "config.json")
        if not isinstance(config, dict):
            return
        for typ in self.special_token_types:
            tid = config.get(f"{typ}_token_id")
            if tid is None and "text_config" in config:  # multimodal configs nest it
                tid = config["text_config"].get(f"{typ}_token_id")
            self.set_special_token(typ, tid)


def add_special_vocab(
    writer: gguf.GGUFWriter, folder: Path, load_merges: bool = False, n_vocab: int | None = None
) -> None:
    """`gguf.SpecialVocab(folder, load_merges=..., n_vocab=...).add_to_gguf(writer)`."""
    _SpecialVocab(folder, load_merges=load_merges, n_vocab=n_vocab).add_to_gguf(writer)
