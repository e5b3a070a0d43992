"""`estimate`'s parameter count from a config.json against what transformers builds from it.

The references (tests/data/param_counts.json, made by tests/fixtures/make_param_counts.py) are
`sum(p.numel() for p in model.parameters())` of the class in `architectures`, built by
transformers on torch's meta device: each model type's default config at 2 layers, and variants
that change the count (other heads, tied or untied embeddings, biases, norms, MoE layouts,
encoder and decoder of different depths). Every one must be exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tensorfile.estimate.architectures import count_parameters, known_types
from tensorfile.estimate.model_source import spec_from_config

DATA = json.loads((Path(__file__).parent / "data" / "param_counts.json").read_text(encoding="utf-8"))
CASES = DATA["cases"]
FAMILY = {"t5": "encoder-decoder", "mt5": "encoder-decoder", "bart": "encoder-decoder"}
FAMILY |= {"whisper": "encoder-decoder", "bert": "encoder", "roberta": "encoder", "distilbert": "encoder"}
FAMILY |= {"xlm-roberta": "encoder"}
FAMILY |= {"vit": "vision"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_count_equals_transformers(case: str) -> None:
    ref = CASES[case]
    count = count_parameters(ref["config"])
    assert count is not None
    assert count.total == ref["parameters"], f"{case}: {count.parts}"
    spec = spec_from_config(ref["config"])
    assert spec.total_params == ref["parameters"]  # what estimate reports
    expected = FAMILY.get(ref["model_type"], "decoder")
    if ref["class"].endswith("EncoderModel"):
        expected = "encoder"  # T5EncoderModel: the encoder alone
    assert count.family == spec.family == expected
    # the per-part counts the memory model uses stay within the total: no part counted twice
    assert spec.linear_params <= spec.total_params
    assert spec.shaped_params <= spec.total_params * 1.01 or case == "opt:projected"


def test_references_cover_the_issue_list() -> None:
    wanted = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2"}
    wanted |= {"gemma3_text", "phi", "phi3", "gpt2", "gpt_bigcode", "gpt_neox", "gptj", "falcon", "bloom"}
    wanted |= {"opt", "stablelm", "starcoder2", "olmo2", "cohere", "deepseek_v3", "granite"}
    wanted |= {"t5", "mt5", "bart", "whisper", "bert", "roberta", "distilbert", "vit"}
    wanted |= {"gpt_neo", "mpt", "olmo", "smollm3", "xlm-roberta"}  # more the hubs carry
    recorded = {c["model_type"] for c in CASES.values()}
    assert wanted <= recorded
    assert recorded <= set(known_types())
    # every type has variants besides its default config
    assert all(sum(c["model_type"] == t for c in CASES.values()) >= 2 for t in recorded)


def test_unknown_model_type_says_what_it_assumed() -> None:
    config = {"model_type": "fancy_new_lm", "hidden_size": 1024, "num_hidden_layers": 4}
    config["num_attention_heads"] = 16
    spec = spec_from_config(config)
    note = " ".join(spec.notes)
    assert "fancy_new_lm: not a model type tensorfile counts exactly" in note
    assert "Llama-style decoder" in note
    assert "intermediate_size (4 × hidden)" in note and "vocab_size (32000)" in note
    assert spec.family == "decoder"


def test_known_type_has_no_guess_notes() -> None:
    spec = spec_from_config(CASES["t5"]["config"])
    assert spec.notes == ()


def test_overrides_recount_from_the_shapes() -> None:
    spec = spec_from_config(CASES["llama"]["config"], overrides={"layers": 4})
    assert spec.layers == 4
    assert spec.total_params == spec.shaped_params
    assert any("shape overrides given" in n for n in spec.notes)


def test_unknown_type_with_weights_counts_the_weights(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from tensorfile.estimate.model_source import spec_from_path

    tensors = {
        "model.embed_tokens.weight": np.zeros((100, 64), np.float32),
        "model.layers.0.mlp.weight": np.zeros((64, 256), np.float32),
    }
    save_file(tensors, str(tmp_path / "model.safetensors"))
    config = {"model_type": "fancy_new_lm", "hidden_size": 64, "num_hidden_layers": 1}
    config["num_attention_heads"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    spec, _ = spec_from_path(tmp_path)
    assert spec.total_params == 100 * 64 + 64 * 256  # the weights' own count, not the shapes'
    assert any("fancy_new_lm" in n and "parameters from the weights" in n for n in spec.notes)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # the released configs' sizes (transformers 4.57.6 on the meta device builds these totals)
        (
            {"model_type": "t5", "d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32, "num_layers": 24}
            | {"vocab_size": 32128, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
            2_849_757_184,  # google/flan-t5-xl
        ),
        (
            {"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
            | {"intermediate_size": 3072, "image_size": 224, "patch_size": 16, "num_labels": 1000},
            86_567_656,  # google/vit-base-patch16-224
        ),
    ],
)
def test_released_configs(config: dict, expected: int) -> None:
    head = {"t5": "T5ForConditionalGeneration", "vit": "ViTForImageClassification"}[config["model_type"]]
    count = count_parameters({**config, "architectures": [head]})
    assert count is not None and count.total == expected
