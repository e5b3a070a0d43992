"""The memory model follows the architecture: encoder-decoder, encoder-only and vision rules.

The referee (tests/data/family_memory.json, made by tests/fixtures/make_family_memory.py with
transformers on CPU, fp32, eager attention) records the cache an encoder-decoder's forward returns
and the bytes autograd saves in a training forward pass, for small models of each family.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tensorfile.estimate.activations import training_activations
from tensorfile.estimate.encoder_peaks import cross_cache, family_rule
from tensorfile.estimate.lengths import encoder_length
from tensorfile.estimate.memory import estimate
from tensorfile.estimate.model_source import spec_from_config
from tensorfile.estimate.run import make_run
from tensorfile.estimate.training import loss_logits

from .conftest import run_cli

DATA = Path(__file__).parent / "data"
MEASURED = json.loads((DATA / "family_memory.json").read_text(encoding="utf-8"))["cases"]
CONFIGS = json.loads((DATA / "param_counts.json").read_text(encoding="utf-8"))["cases"]
# saved activations, ours ÷ measured: T5 counts its fp32 softmax twice (output and a 16-bit copy,
# a no-op in fp32), as the decoders' rule does, which the measured GPU peaks of T0 support
BOUNDS = {"t5": (1.0, 1.3)}


@pytest.mark.parametrize("name", sorted(n for n in MEASURED if "cache_bytes" in MEASURED[n]))
def test_encoder_decoder_caches_equal_transformers(name: str) -> None:
    case = MEASURED[name]
    spec = spec_from_config(case["config"])
    run = make_run(weights="fp32", compute_dtype="fp32", batch=case["batch"], seq_len=case["seq_len"])
    cross, _ = cross_cache(spec, run, encoder_length(spec, run))
    own = 2 * spec.layers * spec.kv_width * case["gen_tokens"] * run.batch * run.kv_bytes
    assert cross == case["cache_bytes"]["cross"]
    assert own == case["cache_bytes"]["self"]


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_training_activations_against_saved_tensors(name: str) -> None:
    case = MEASURED[name]
    spec = spec_from_config(case["config"])
    run = make_run(
        task="train",
        method="full",
        weights="fp32",
        precision="fp32",
        batch=case["batch"],
        seq_len=case["seq_len"],
        flash_attn=False,
    )
    saved, _, _ = training_activations(spec, run, case["seq_len"], False, 4.0)
    low, high = BOUNDS.get(name, (0.9, 1.1))
    assert low <= saved / case["saved_bytes"] <= high


def _estimate(name: str, **settings: object):
    return estimate(spec_from_config(CONFIGS[name]["config"]), make_run(**settings))


def test_encoder_only_has_no_cache_and_generates_nothing() -> None:
    est = _estimate("bert", seq_len=4096, gen_tokens=100)
    assert "KV cache" not in est.breakdown and est.phase == "forward pass"
    assert "logits" in est.breakdown  # BertForMaskedLM: a logit per token and vocabulary entry
    assert any("past the model's 512 positions: estimated at 512" in n for n in est.notes)
    assert any("--gen-tokens 100 does not apply" in n for n in est.notes)
    assert est.notes[0] == family_rule(est.model)
    base = _estimate("bert:base", seq_len=512)
    assert "logits" not in base.breakdown and "output" in base.breakdown


def test_vision_sizes_by_patches() -> None:
    a = _estimate("vit", seq_len=100)
    b = _estimate("vit", seq_len=8000)
    assert a.breakdown == b.breakdown  # 197 patches whatever --seq-len says
    assert a.model.encoder_seq == 197
    big = _estimate("vit:384-patch32")
    assert big.model.encoder_seq == 145


def test_encoder_decoder_phases_and_cross_cache() -> None:
    short = _estimate("bart", seq_len=64, gen_tokens=512)
    assert short.phase == "generation (decode)"
    assert "cross-attention" in short.parts[[p.name for p in short.parts].index("KV cache")].formula
    long_input = _estimate("bart", seq_len=1024, gen_tokens=1, batch=8)
    assert long_input.phase == "encoder pass"
    whisper = _estimate("whisper", seq_len=10, gen_tokens=1000)
    assert any("the decoder has 448 positions" in n for n in whisper.notes)
    assert any("fixed by the model at 1500" in n for n in whisper.notes)


def test_t5_attention_is_eager_whatever_flash_says() -> None:
    est = _estimate("t5", seq_len=2048, flash_attn=True)
    assert est.run.flash_attn is False
    assert any("eager attention only" in n for n in est.notes)
    assert not any("eager" in n for n in _estimate("bart", seq_len=512).notes)


def test_training_rules_per_family() -> None:
    clf = _estimate("bert:classifier", task="train", method="full", seq_len=256)
    assert "logits" not in clf.breakdown  # a classification head: next to no logits
    assert clf.notes[0].startswith("encoder-only training")
    spec = spec_from_config(CONFIGS["t5"]["config"])
    short = make_run(task="train", method="full", seq_len=512, target_len=32, batch=16)
    long = make_run(task="train", method="full", seq_len=512, target_len=512, batch=16)
    assert loss_logits(spec, short, 512, False)[0] * 16 == loss_logits(spec, long, 512, False)[0]
    assert (
        training_activations(spec, short, 512, False, 4.0)[0]
        < training_activations(spec, long, 512, False, 4.0)[0]
    )
    assert estimate(spec, short).per_gpu_bytes < estimate(spec, long).per_gpu_bytes
    lora = _estimate("t5", task="train", method="lora", lora_targets="q,v", seq_len=512, batch=16)
    assert lora.per_gpu_bytes < estimate(spec, long).per_gpu_bytes


def test_cli_explain_and_json_say_the_family(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIGS["t5"]["config"]), encoding="utf-8")
    out = run_cli("estimate", str(config), "--seq-len", "512", "--explain")
    assert out.returncode == 0, out.stderr
    assert "family encoder-decoder" in " ".join(out.stdout.split())
    proc = run_cli("estimate", str(config), "--task", "train", "--target-len", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["family_rule"].startswith("encoder-decoder training")
    assert doc["model"]["family"] == "encoder-decoder" and doc["model"]["total_params"] == 31_136_256
    bad = run_cli("estimate", str(config), "--target-len", "-1")
    assert bad.returncode == 2 and "target-len" in bad.stderr and "Traceback" not in bad.stderr
