"""GPT-2 style BPE vocabularies from tokenizer.json, as the converter gets them from AutoTokenizer.

The converter's `get_vocab_base` loads the folder with transformers' AutoTokenizer and reads its
vocab, its added tokens (content, special, normalized) and `encode(chktxt)`, whose sha256 names
the pre-tokenizer. `load_hf_tokenizer` builds the same state with HF's `tokenizers` library (the
Rust backend AutoTokenizer wraps): tokenizer.json, then what transformers 4.57's
`from_pretrained` and the tokenizer class's `__init__` do to it — the special tokens of
tokenizer_config.json / special_tokens_map.json and the class defaults, the added tokens re-added
from `added_tokens_decoder`, the pre-tokenizer's `add_prefix_space`, and the BOS/EOS post-processor
that Llama's and Gemma's classes rebuild. Anything beyond that is refused rather than guessed.
"""

from __future__ import annotations

import json
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError
from .vocab import add_special_vocab, add_tokenizer_core, does_token_look_special, read_json

CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ "
    "(multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
    "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# get_vocab_base_pre's table, chkhsh → tokenizer.ggml.pre, in its order (its `if`s are not `elif`s:
# for a hash listed twice the later name wins, as in a dict). tests/test_gguf_vocab.py checks it
# against the vendored converter.
PRE_TOKENIZERS: dict[str, str] = {
    "b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b": "chatglm-bpe",
    "81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516": "chatglm-bpe",
    "a1336059768a55c99a734006ffb02203cd450fed003e9a71886c88acf24fdbc2": "glm4",
    "9ca2dd618e8afaf09731a7cf6e2105b373ba6a1821559f258b272fe83e6eb902": "glm4",
    "cdf5f35325780597efd76153d4d1c16778f766173908894c04afc20108536267": "glm4",
    "1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35": "minerva-7b",
    "7e57df22b1fe23a7b1e1c7f3dc4e3f96d43a4eb0836d0c6bdc3436d7b2f1c664": "hunyuan",
    "bba3b3366b646dbdded5dbc42d59598b849371afc42f7beafa914afaa5b70aa6": "hunyuan-dense",
    "e6ddf9c6686791c12d698d34c31ab9be1fea9af5a3d9a6909783ab382198ae1c": "hy_v4",
    "a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6": "falcon-h1",
    "60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86": "falcon-h1",
    "3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896": "falcon-h1",
    "48f8e02c0359c0bbdd82f26909171fac1c18a457bb47573ed1fe3bbb2c1cfd4b": "falcon-h1",
    "81212dc7cdb7e0c1074ca62c5aeab0d43c9f52b8a737be7b12a777c953027890": "kimi-k2",
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",
    "1444df51289cfa8063b96f0e62b1125440111bc79a52003ea14b6eac7016fd5f": "qwen35",
    "66b8d4e19ab16c3bfd89bce5d785fb7e0155e8648708a1f42077cb9fe002c273": "grok-2",
    "b3d1dd861f1d4c5c0d2569ce36baf3f90fe8a102db3de50dd71ff860d91be3df": "jina-v2-de",
    "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4": "gpt-2",
    "9e454714343b69b99b71795c1d27a68c2a1d15dab111f4d353109f966af29da7": "lfm2",
    "846deafc5b0fa786186fa4ae6c7b49903cf2f1d1895bdb80b9120d60be135252": "gemma4",
    "0a766d034107bc736a3f2dc4968fd62e54a3570f1454443e0c5a4cc6bd7941ed": "spark2_5",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
    "049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754": "deepseek-llm",
    "347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821": "deepseek-coder",
    "8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed": "falcon",
    "0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f": "jina-v2-en",
    "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e": "falcon3",
    "8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7": "bert-bge-large",
    "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166": "olmo",
    "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
    "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3": "stablelm2",
    "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact",
    "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r",
    "d772b220ace2baec124bed8cfafce0ead7d6c38a4b65ef11261cf9d5d62246d1": "tiny_aya",
    "52df12b4c8d4176e7481aab4b6e8454d1fd0a210a04a574f6d4e067d10e23c3e": "cohere2moe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e": "dbrx",
    "c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448": "jina-v1-en",
    "171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643": "jina-v2-es",
    "27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6": "jina-v2-de",
    "a023e9fdc5a11f034d3ef515b92350e56fb2af1f66c6b6811a4444ea9bf8763d": "jina-v5-nano",
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",
    "c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360": "poro-chat",
    "7967bfa498ade6b757b064f31e964dddbb80f8f9a4d68d4ba7998fcf281c531a": "jina-v2-code",
    "7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee": "viking",
    "b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901": "jais",
    "bc5108ee1eb6a3d600cadd065f63190fbd0554dbc9e4bbd6a0d977970afc8d2a": "jais-2",
    "7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f": "codeshell",
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7": "bloom",
    "bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21": "gpt3-finnish",
    "4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae": "exaone",
    "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",
    "60824e3c0d9401f89943cbb2fff727f0e2d4c545ba4df2d6e4f09a6db0f5b450": "chameleon",
    "8b5a93ed704057481f240da0be7e7dca721d7f8f4755263b6807227a2cbeae65": "roberta-bpe",
    "ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb": "gigachat",
    "d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1": "megrez",
    "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5": "deepseek-v3",
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e": "gpt-4o",
    "7dec86086fcc38b66b7bc1575a160ae21cf705be7718b9d5598190d7c12db76f": "superbpe",
    "1994ffd01900cfb37395608534236ecd63f2bd5995d6cb1004dda1af50240f15": "trillion",
    "96a5f08be6259352137b512d4157e333e21df7edd3fcd152990608735a65b224": "bailingmoe",
    "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406": "llama4",
    "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3": "pixtral",
    "d5f1dd6f980fec569fb218a81a7658ac45fc56b38c5a0adeb1c232fbe04ef5ec": "seed-coder",
    "b0a6b1c0bd5998ebd9df08611efde34a4ff03faed45ae09c43e6b31ebd4b94cf": "a.x-4.0",
    "f6791d196f87ce6b56a7d234be618e0d58f8cda3549416635b2bebcd22cd95c4": "midm-2.0",
    "169bf0296a13c4d9b7672313f749eb36501d931022de052aad6e36f2bf34dd51": "lfm2",
    "2085e1638f6c377a0aa4ead21b27bb4cb941bf800df86ed391011769c1758dfb": "exaone4",
    "a1e163ecab2e718a4c829d1148b6e86824ec36163bb71941c3dca9cd5ac25756": "mellum",
    "a0b64b4385f123663873756336c085744376d015ff328bb1d901598f63c44152": "modern-bert",
    "49fc0303c9e0d2c2c565c510f64b2d9b271276acdcdadff733249eda9f7d59df": "afmoe",
    "9b1be57e70d20d9501b2b3186e792d81181ae36ada3903c26f9fea418cf87206": "bailingmoe2",
    "53e325976a6e142379c19b09afcae354f2f496f147afa8f9e189a33fe4e3024e": "granite-docling",
    "f4f37b6c8eb9ea29b3eac6bb8c8487c5ab7885f8d8022e67edc1c68ce8403e95": "minimax-m2",
    "4a2e2abae11ca2b86d570fc5b44be4d5eb5e72cc8f22dd136a94b37da83ab665": "kormo",
    "9d70134b369a70e5735009b6de918f7581b5211f7c074d1f89f753aea8248af1": "youtu",
    "16389f0a1f51ee53e562ffd51c371dc508639ab0e4261502071836e50e223e91": "solar-open",
    "6c81ce329e0802883b22eabab0d3fa48357337ef1ecb45443828bf1f6254833f": "exaone-moe",
    "d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4": "qwen35",
    "b4b8ca1f9769494fbd956ebc4c249de6131fb277a4a3345a7a92c7dd7a55808d": "joyai-llm",
    "e4d54df1ebc1f2b91acd986c5b51aa50837d5faf7c7398e73c1f9e9ee5d19869": "kanana2",
    "862f827721df956049dff5ca81a57f29e575280bc622e290d3bf4e35eca29015": "f2llmv2",
    "62f6fb0a6fd5098caeabb19b07a5c1099cafc8b9c40eab6ea89ece4ec02fbc57": "sarvam-moe",
    "f728162c1315c26e40249849799b4ba3fe584c32084b4795b03eb295e63cb5af": "talkie",
    "36f3066e97b7f3994b379aaacde306c1444c6ae84e81a5ae3cd2b7ed3b8c42d4": "minicpm5",
    "f241072145675bf8322086f115aebad05e9f869557a238bf2150a2a417d1bf60": "granite-embed-multi-97m",
    "789696f5946cc0fc59371f39f6097cafed196b3acded6140432f26bbb1ae1669": "granite-embed-multi-311m",
    "9dcf830ee9990cdbf78cc523a5f7bd9ad8f3f9890c2d3581d2785ad10f07049d": "mellum2",
    "972da7b59cec44d1f0a490a86c96df53859e486e481563e5dddac155013d87ac": "laguna",
    "653660222fb704f61cbf2b618a8ae6502b7f8b20c980f9a5de07ed78e13319cd": "ufakzeka",
}

_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_ADDITIONAL = "additional_special_tokens"


class _Class:
    """What a transformers tokenizer class adds in `__init__`: default special tokens and flags."""

    def __init__(self, defaults: dict[str, str | None], post_processor: bool = False, added: bool = False):
        self.defaults = defaults
        self.post_processor = post_processor  # rebuilds BOS/EOS TemplateProcessing (update_post_processor)
        self.added = added  # turns string defaults into AddedToken(special=True, normalized=False)


_LLAMA = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
_GEMMA = {"unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}
_QWEN2 = {
    "unk_token": "<|endoftext|>",
    "bos_token": None,
    "eos_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
}
_GPT2 = {"unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
_CLASSES = {
    "PreTrainedTokenizerFast": _Class({}),
    "LlamaTokenizerFast": _Class(_LLAMA, post_processor=True),
    "GemmaTokenizerFast": _Class(_GEMMA, post_processor=True),
    "Qwen2TokenizerFast": _Class(_QWEN2, added=True),
    "GPT2TokenizerFast": _Class(_GPT2),
}
# AutoTokenizer's fallback when neither tokenizer_config.json nor config.json names a class
# (TOKENIZER_MAPPING_NAMES, fast classes, without mistral_common installed).
_BY_MODEL_TYPE = {
    **dict.fromkeys(("llama", "phi3", "mistral", "mixtral"), "LlamaTokenizerFast"),
    **dict.fromkeys(("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"), "Qwen2TokenizerFast"),
    **dict.fromkeys(("gemma", "gemma2", "gemma3", "gemma3_text"), "GemmaTokenizerFast"),
}


def _class_name(folder: Path, config: dict[str, Any] | None) -> str:
    name = (config or {}).get("tokenizer_class")
    if name is None:
        model_config = read_json(folder / "config.json") or {}
        name = model_config.get("tokenizer_class") or _BY_MODEL_TYPE.get(str(model_config.get("model_type")))
        if name is None:
            raise UnsupportedError(
                "cannot tell the tokenizer class (no tokenizer_class, unknown model_type)", folder
            )
    fast = name if name.endswith("Fast") else name + "Fast"
    if fast not in _CLASSES:
        raise UnsupportedError(f"tokenizer class {name} is not supported for GGUF vocab conversion", folder)
    return fast


def _added_token(data: dict[str, Any]) -> Any:
    from tokenizers import AddedToken

    keys = ("single_word", "lstrip", "rstrip", "normalized", "special")
    try:
        return AddedToken(data["content"], **{k: data[k] for k in keys if k in data})
    except (KeyError, TypeError) as exc:
        raise FormatError(f"bad added token {data!r} ({exc})") from None


def _convert_added_tokens(obj: Any) -> Any:
    """PreTrainedTokenizerBase.convert_added_tokens(save=False): {"__type": "AddedToken"} → AddedToken."""
    if isinstance(obj, dict) and obj.get("__type") == "AddedToken":
        return _added_token({k: v for k, v in obj.items() if k != "__type"})
    if isinstance(obj, (list, tuple)):
        return [_convert_added_tokens(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _convert_added_tokens(v) for k, v in obj.items()}
    return obj


class HFTokenizer:
    """The parts of a transformers fast tokenizer the converter reads, over a tokenizers.Tokenizer."""

    def __init__(self, backend: Any, special: dict[str, Any], clean_up: bool) -> None:
        self.backend = backend
        self.special = special  # _special_tokens_map: attribute → str | AddedToken | list | None
        self.clean_up = clean_up

    @property
    def vocab_size_base(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=False))

    def vocab(self) -> dict[str, int]:
        return dict(self.backend.get_vocab(with_added_tokens=True))

    def added_tokens_decoder(self) -> dict[int, Any]:
        return dict(sorted(self.backend.get_added_tokens_decoder().items()))

    def added_vocab(self) -> dict[str, int]:
        return {t.content: i for i, t in self.added_tokens_decoder().items()}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        # transformers' encode turns off the file's truncation and padding (DO_NOT_TRUNCATE / PAD)
        self.backend.no_truncation()
        self.backend.no_padding()
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: list[int]) -> str:
        text = self.backend.decode(ids, skip_special_tokens=False)
        if self.clean_up:  # PreTrainedTokenizerBase.clean_up_tokenization
            for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't")):
                text = text.replace(a, b)
            for a, b in ((" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(a, b)
        return str(text)

    def special_tokens_extended(self) -> list[Any]:
        """all_special_tokens_extended: each special token once (by text), in attribute order."""
        out: list[Any] = []
        seen: set[str] = set()
        for value in self.special.values():
            if not value:
                continue
            for token in value if isinstance(value, (list, tuple)) else [value]:
                if str(token) not in seen:
                    seen.add(str(token))
                    out.append(token)
        return out

    def all_special_tokens(self) -> list[str]:
        return [str(t) for t in self.special_tokens_extended()]

    def token_id(self, token: str) -> int | None:
        index = self.backend.token_to_id(token)
        if index is None:  # _convert_token_to_id_with_added_voc: the unk id
            unk = self.special.get("unk_token")
            return None if unk is None or str(unk) == token else self.token_id(str(unk))
        return int(index)

    def all_special_ids(self) -> list[int | None]:
        return [self.token_id(t) for t in self.all_special_tokens()]


def load_hf_tokenizer(folder: Path) -> HFTokenizer:
    """AutoTokenizer.from_pretrained(folder) for a folder with tokenizer.json (transformers 4.57)."""
    from tokenizers import AddedToken, Tokenizer

    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise UnsupportedError("BPE vocab conversion needs tokenizer.json (a fast tokenizer)", folder)
    config = read_json(folder / "tokenizer_config.json")
    if config is not None and not isinstance(config, dict):
        raise FormatError("tokenizer_config.json is not a JSON object", folder)
    kind = _CLASSES[_class_name(folder, config)]
    kwargs = {k: v for k, v in (config or {}).items() if k not in ("tokenizer_class", "init_inputs")}
    if kwargs.get("fix_mistral_regex") or kwargs.get("from_slow"):
        raise UnsupportedError("tokenizer_config.json asks for a slow or patched tokenizer", folder)
    decoder, by_text = _added_tokens(folder, kwargs)
    kwargs = _convert_added_tokens(kwargs)
    for key in (*_SPECIAL_KEYS, _ADDITIONAL):
        if key in kwargs and by_text and kwargs[key] is not None and key != _ADDITIONAL:
            kwargs[key] = by_text.get(str(kwargs[key]), kwargs[key])
    # the class's __init__: its defaults for special tokens not given at all
    for key, value in kind.defaults.items():
        kwargs.setdefault(key, value)
    if kind.added:
        for key in kind.defaults:
            if isinstance(kwargs.get(key), str):
                kwargs[key] = AddedToken(
                    kwargs[key], lstrip=False, rstrip=False, special=True, normalized=False
                )
    if kind.post_processor and kwargs.get("add_prefix_space") is not None:
        raise UnsupportedError(
            "add_prefix_space makes transformers rebuild the tokenizer from the slow one", folder
        )
    try:
        backend = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise FormatError(f"tokenizers cannot load tokenizer.json ({exc})", tokenizer_file) from None
    if backend.padding is not None:
        kwargs.setdefault("pad_token", backend.padding["pad_token"])
    backend.encode_special_tokens = bool(kwargs.get("split_special_tokens", False))
    special = _special_map(kwargs, folder)
    tok = HFTokenizer(backend, special, bool(kwargs.get("clean_up_tokenization_spaces", False)))
    _readd_tokens(tok, decoder)
    _fix_prefix_space(backend, kwargs.get("add_prefix_space", None if kind.post_processor else False))
    if kind.post_processor:
        _update_post_processor(
            tok, kwargs.get("add_bos_token", True), kwargs.get("add_eos_token", False), folder
        )
    return tok


def _added_tokens(folder: Path, kwargs: dict[str, Any]) -> tuple[dict[int, Any], dict[str, Any]]:
    """from_pretrained's added_tokens_decoder and its text → token map (modern or legacy files)."""
    decoder: dict[int, Any] = {}
    by_text: dict[str, Any] = {}
    if "added_tokens_decoder" in kwargs:
        for idx, data in kwargs["added_tokens_decoder"].items():
            token = _added_token(data) if isinstance(data, dict) else data
            decoder[int(idx)] = token
            by_text[str(token)] = token
        kwargs["added_tokens_decoder"] = decoder
        return decoder, by_text
    # legacy folders: special_tokens_map.json overrides tokenizer_config.json's special tokens
    for key, value in (read_json(folder / "special_tokens_map.json") or {}).items():
        if isinstance(value, dict):
            value = _added_token({**value, "special": True})
        elif key == _ADDITIONAL and isinstance(value, list):
            merged = kwargs.pop(_ADDITIONAL, []) or []
            for item in value:
                token = _added_token({**item, "special": True}) if isinstance(item, dict) else item
                if token not in merged:
                    merged.append(token)
            value = merged
        kwargs[key] = value
    added = read_json(folder / "added_tokens.json")
    if added:
        if not isinstance(added, dict):
            raise FormatError("added_tokens.json is not a JSON object", folder)
        specials: list[str] = []
        for key in (*_SPECIAL_KEYS, _ADDITIONAL):
            if kwargs.get(key) is not None:
                specials += [str(t) for t in kwargs[key]] if key == _ADDITIONAL else [str(kwargs[key])]
        for text, index in added.items():
            special = text in specials
            decoder[index] = _added_token(
                {
                    "content": text,
                    "rstrip": False,
                    "lstrip": False,
                    "normalized": not special,
                    "special": special,
                }
            )
            # transformers files each under str(token), its unset `token` argument: "None"
            by_text["None"] = decoder[index]
    doc = read_json(folder / "tokenizer.json")
    for data in doc.get("added_tokens", []):
        token = _added_token(data)
        decoder[int(data["id"])] = token
        by_text[str(token)] = token
    kwargs["added_tokens_decoder"] = decoder
    return decoder, by_text


def _special_map(kwargs: dict[str, Any], folder: Path) -> dict[str, Any]:
    """SpecialTokensMixin.__init__ + extra_special_tokens: the special token attributes."""
    from tokenizers import AddedToken

    special: dict[str, Any] = dict.fromkeys(_SPECIAL_KEYS)
    special[_ADDITIONAL] = []
    for key in (*_SPECIAL_KEYS, _ADDITIONAL):
        value = kwargs.get(key)
        if value is None:
            continue
        if key == _ADDITIONAL and not isinstance(value, (list, tuple)):
            raise UnsupportedError(f"tokenizer_config.json {key} is not a list", folder)
        items = value if key == _ADDITIONAL else [value]
        if not all(isinstance(t, (str, AddedToken)) for t in items):
            raise UnsupportedError(f"tokenizer_config.json {key} is neither text nor an AddedToken", folder)
        special[key] = value
    extra = kwargs.get("extra_special_tokens") or {}
    if not isinstance(extra, dict):
        raise UnsupportedError("extra_special_tokens is not a mapping", folder)
    for key, value in extra.items():
        if not isinstance(value, (str, AddedToken)):
            raise UnsupportedError(f"extra special token {key} is neither text nor an AddedToken", folder)
        special[key] = value
    return special


def _readd_tokens(tok: HFTokenizer, decoder: dict[int, Any]) -> None:
    """PreTrainedTokenizerFast.__init__ adds the config's added tokens again (its duplicate check
    compares reprs of tokens with ids, so never matches), then any special token still missing."""
    from tokenizers import AddedToken

    to_add: list[Any] = [token for _, token in sorted(decoder.items())]
    encoder = [*tok.added_vocab(), *(str(t) for t in to_add)]
    to_add += [t for t in tok.special_tokens_extended() if t not in encoder and t not in to_add]
    if not to_add:
        return
    specials = tok.all_special_tokens()
    tokens = []
    for token in to_add:
        if isinstance(token, AddedToken):
            token.special = token.special or str(token) in specials
        else:
            token = AddedToken(token, special=str(token) in specials)
        tokens.append(token)
    tok.backend.add_tokens(tokens)


def _fix_prefix_space(backend: Any, add_prefix_space: Any) -> None:
    """A top-level pre-tokenizer whose add_prefix_space differs from the config's is rebuilt."""
    from tokenizers import pre_tokenizers

    try:
        state = json.loads(backend.pre_tokenizer.__getstate__())
        if state.get("add_prefix_space", add_prefix_space) != add_prefix_space:
            cls = getattr(pre_tokenizers, state.pop("type"))
            state["add_prefix_space"] = add_prefix_space
            backend.pre_tokenizer = cls(**state)
    except Exception:  # transformers ignores every failure here (no or custom pre-tokenizer)
        pass


def _update_post_processor(tok: HFTokenizer, add_bos: Any, add_eos: Any, folder: Path) -> None:
    """LlamaTokenizerFast/GemmaTokenizerFast.update_post_processor."""
    from tokenizers import processors

    bos = None if tok.special["bos_token"] is None else str(tok.special["bos_token"])
    eos = None if tok.special["eos_token"] is None else str(tok.special["eos_token"])
    if (bos is None and add_bos) or (eos is None and add_eos):
        raise UnsupportedError(
            "add_bos_token/add_eos_token set without the token (transformers fails too)", folder
        )
    single = f"{(bos + ':0 ') if add_bos else ''}$A:0{(' ' + eos + ':0') if add_eos else ''}"
    pair = f"{single}{(' ' + bos + ':1') if add_bos else ''} $B:1{(' ' + eos + ':1') if add_eos else ''}"
    special = []
    if add_bos:
        special.append((bos, tok.token_id(bos)))  # type: ignore[arg-type]
    if add_eos:
        special.append((eos, tok.token_id(eos)))  # type: ignore[arg-type]
    try:
        tok.backend.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=special
        )
    except Exception as exc:
        raise UnsupportedError(
            f"transformers cannot build this tokenizer's BOS/EOS template ({exc})", folder
        ) from None


def pre_tokenizer_name(tok: HFTokenizer) -> str:
    """get_vocab_base_pre: the sha256 of str(encode(chktxt)) names the pre-tokenizer."""
    chkhsh = sha256(str(tok.encode(CHKTXT)).encode()).hexdigest()
    if chkhsh not in PRE_TOKENIZERS:
        raise UnsupportedError(
            f"BPE pre-tokenizer not recognized (chkhsh {chkhsh}): llama.cpp's convert_hf_to_gguf.py "
            "refuses it too until its get_vocab_base_pre() lists the model"
        )
    return PRE_TOKENIZERS[chkhsh]


def get_vocab_base(folder: Path, hparams: dict[str, Any]) -> tuple[list[str], list[int], str]:
    """TextModel.get_vocab_base: tokens, token types and the pre-tokenizer name."""
    tok = load_hf_tokenizer(folder)
    vocab = tok.vocab()
    vocab_size = hparams.get("vocab_size", len(vocab))
    if vocab and max(vocab.values()) >= vocab_size:
        raise FormatError(
            f"the tokenizer has ids up to {max(vocab.values())}, over vocab_size {vocab_size}", folder
        )
    tokpre = pre_tokenizer_name(tok)
    reverse = {i: text for text, i in vocab.items()}
    added_vocab = tok.added_vocab()
    decoder = tok.added_tokens_decoder()
    tokens: list[str] = []
    toktypes: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[i]
        if token not in added_vocab:
            toktypes.append(gguf.TokenType.NORMAL)
        else:
            if i not in decoder:
                raise FormatError(f"added token {token!r} has two ids", folder)
            if not decoder[i].normalized:
                # llama.cpp expects CONTROL and USER_DEFINED tokens pre-normalized
                token = tok.decode(tok.encode(token, add_special_tokens=False))
            if decoder[i].special or does_token_look_special(token):
                toktypes.append(gguf.TokenType.CONTROL)
            else:
                token = token.replace("\u2581", " ")  # pre-normalize user-defined spaces (Gemma)
                toktypes.append(gguf.TokenType.USER_DEFINED)
        tokens.append(token)
    return tokens, toktypes, tokpre


def set_vocab_gpt2(writer: gguf.GGUFWriter, folder: Path, hparams: dict[str, Any]) -> None:
    """TextModel._set_vocab_gpt2."""
    tokens, toktypes, tokpre = get_vocab_base(folder, hparams)
    add_tokenizer_core(writer, "gpt2", tokpre, tokens, toktypes)
    add_special_vocab(writer, folder, load_merges=True)
