"""tensorfile estimate: shapes, weight bytes, the phase model, GPU fit, solvers, CLI."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from tensorfile.estimate import estimate_memory, make_run, spec_from_config, spec_from_size
from tensorfile.estimate.gpus import GPUS, find_gpu, fits, max_batch, max_context
from tensorfile.estimate.memory import estimate
from tensorfile.estimate.run import RunError, RunSpec
from tensorfile.estimate.spec import parse_size
from tensorfile.estimate.training_states import trainable_params
from tensorfile.estimate.validation import check_row, load_rows
from tensorfile.estimate.weights import weight_bytes

from .conftest import run_cli

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples" / "models"

LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "torch_dtype": "float16",
}


def test_config_shapes_give_the_real_parameter_count() -> None:
    # Llama-2-7b-hf has 6,738,415,616 parameters (its safetensors index total_size / 2)
    spec = spec_from_config(LLAMA2_7B)
    assert spec.total_params == 6_738_415_616
    mistral = spec_from_config({**LLAMA2_7B, "intermediate_size": 14336, "num_key_value_heads": 8,
                                "sliding_window": 4096, "model_type": "mistral"})  # fmt: skip
    assert mistral.total_params == 7_241_732_096
    assert mistral.sliding_window == 4096 and mistral.sliding_layers == 32


def test_sizes_parse_and_pick_similar_shapes() -> None:
    assert parse_size("7B") == 7_000_000_000
    assert parse_size("1.5b") == 1_500_000_000
    assert parse_size("350M") == 350_000_000
    assert parse_size("7e9") == 7_000_000_000
    spec = spec_from_size(70_000_000_000)
    assert spec.hidden_size == 8192 and spec.kv_heads == 8
    assert abs(spec.shaped_params / 70e9 - 1) < 0.03
    assert any("assumed" in note for note in spec.notes)
    with pytest.raises(Exception, match="not a model size"):
        parse_size("seven")


def test_kv_cache_is_the_textbook_formula() -> None:
    spec = spec_from_config(LLAMA2_7B)
    est = estimate(spec, make_run(seq_len=100, gen_tokens=3996, counter="allocated", cache="dynamic"))
    kv = 2 * 32 * 4096 * 4096 * 2  # 2 × layers × kv width × tokens × bytes
    assert est.phase == "generation (decode)"
    assert est.breakdown["KV cache"] == pytest.approx(kv * (1 + 1 / 32))  # + one layer while it grows
    gqa = spec_from_config({**LLAMA2_7B, "num_key_value_heads": 8})
    est8 = estimate(gqa, make_run(seq_len=100, gen_tokens=3996, counter="allocated", kv_dtype="fp8"))
    assert est8.breakdown["KV cache"] == pytest.approx(kv / 4 / 2 * (1 + 1 / 32))


def test_sliding_window_caps_the_cache() -> None:
    mistral = spec_from_config({**LLAMA2_7B, "num_key_value_heads": 8, "sliding_window": 4096})
    short = estimate(mistral, make_run(seq_len=5000, gen_tokens=96)).breakdown["KV cache"]
    long = estimate(mistral, make_run(seq_len=32000, gen_tokens=96)).breakdown["KV cache"]
    assert long == pytest.approx(short)
    assert short == pytest.approx(2 * 32 * 1024 * 4096 * 2)  # window tokens, not the prompt


def test_quantized_weights_count_their_side_tensors() -> None:
    spec = spec_from_config(LLAMA2_7B)
    linear = spec.linear_params
    rest = spec.total_params - linear
    nf4 = weight_bytes(spec, "nf4")
    assert nf4.total == pytest.approx(linear * (0.5 + 4 / 64) + rest * 2)
    dq = weight_bytes(spec, "nf4-dq")
    assert dq.total < nf4.total
    assert weight_bytes(spec, "int8").total == pytest.approx(
        linear + rest * 2 + 4 * (32 * (3 * 4096 + 4096 + 2 * 11008 + 4096))
    )
    awq = weight_bytes(spec, "awq")
    assert awq.bits_per_weight == pytest.approx(4 + 2.5 * 8 / 128)
    q4km = weight_bytes(spec, "gguf:Q4_K_M")
    # llama.cpp's Q4_K_M of Llama-2-7B is 4.08 GB on disk
    assert q4km.total / 1e9 == pytest.approx(4.08, rel=0.03)
    assert q4km.kept_on_host > 0  # token_embd stays on the CPU


def test_training_phases_and_sharding() -> None:
    spec = spec_from_config(LLAMA2_7B)
    full = estimate(spec, make_run(task="train", weights="fp32", precision="amp", counter="allocated"))
    p = spec.total_params
    assert full.breakdown["weights"] == 4 * p and full.breakdown["optimizer states"] == 8 * p
    assert full.phase in ("optimizer step", "start of backward", "end of backward")
    assert full.per_gpu_bytes > 16 * p
    z3 = estimate(spec, make_run(task="train", weights="bf16", gpus=8, sharding="zero3", counter="allocated"))
    assert z3.per_gpu_bytes < full.per_gpu_bytes / 3
    ckpt = estimate(spec, make_run(task="train", method="lora", seq_len=4096, grad_ckpt=True))
    plain = estimate(spec, make_run(task="train", method="lora", seq_len=4096))
    assert ckpt.breakdown["activations"] < plain.breakdown["activations"] / 4
    eager = estimate(spec, make_run(task="train", method="lora", seq_len=4096, flash_attn=False))
    assert eager.breakdown["activations"] > plain.breakdown["activations"]


def _train_run(**settings: object) -> RunSpec:
    return make_run(task="train", counter="allocated", seq_len=1024, **settings)


def test_bitsandbytes_layers_keep_their_inputs() -> None:
    # bnb's MatMul4Bit keeps its input for backward; a frozen nn.Linear keeps nothing
    spec = spec_from_config(LLAMA2_7B)
    lora = estimate(spec, _train_run(method="lora", lora_dropout=True)).breakdown["activations"]
    qlora = estimate(spec, _train_run(method="qlora", lora_dropout=True)).breakdown["activations"]
    h, a, width = 4096, 4096, 11008
    assert qlora - lora == pytest.approx(32 * 1024 * 2 * (h + a + h + width))


def test_fsdp_frozen_weights_get_gradients_and_no_sync_keeps_them_whole() -> None:
    spec = spec_from_config(LLAMA2_7B)
    fsdp = dict(method="lora", weights="bf16", gpus=4, sharding="fsdp", grad_ckpt=True)
    plain = estimate(spec, _train_run(**fsdp))
    mixed = estimate(spec, _train_run(**fsdp, fsdp_frozen_grads=True))
    accumulating = estimate(spec, _train_run(**fsdp, fsdp_frozen_grads=True, grad_accum=8))
    blocks = spec.total_params - 2 * spec.embedding_params
    extra = mixed.other_phases["end of backward"] - plain.other_phases["end of backward"]
    assert extra > blocks * 2 / 4 * 0.99  # 16-bit gradients of the frozen block weights, sharded
    assert accumulating.phase == "start of backward"
    assert accumulating.breakdown["gradients"] > blocks * 2 * 0.99  # unsharded while accumulating


def test_gradient_accumulation_keeps_gradients_through_the_next_pass() -> None:
    spec = spec_from_config(LLAMA2_7B)
    one = estimate(spec, _train_run(method="full", weights="bf16", precision="bf16-true"))
    eight = estimate(spec, _train_run(method="full", weights="bf16", precision="bf16-true", grad_accum=8))
    p = spec.total_params
    assert eight.other_phases["start of backward"] - one.other_phases["start of backward"] == pytest.approx(
        2 * (p - spec.embedding_params), rel=1e-6
    )


def test_autocast_computes_the_loss_in_fp32() -> None:
    spec = spec_from_config(LLAMA2_7B)
    tokens = 1024 * 32000
    amp = estimate(spec, _train_run(method="lora", loss_upcast=False, precision="amp"))
    pure = estimate(spec, _train_run(method="lora", loss_upcast=False, precision="bf16-true"))
    assert amp.breakdown["logits"] == tokens * (2 * 2 + 8)
    assert pure.breakdown["logits"] == tokens * 4 * 2


LLAMA32_3B = {**LLAMA2_7B, "hidden_size": 3072, "intermediate_size": 8192, "num_attention_heads": 24,
              "num_hidden_layers": 28, "num_key_value_heads": 8, "vocab_size": 128256,
              "tie_word_embeddings": True}  # fmt: skip


def test_ptuning_prompt_encoder_counts_as_peft_builds_it() -> None:
    # num_trainable_params logged by PEFT's MetaMathQA benchmark for Llama-3.2-3B, 20 virtual tokens
    spec = spec_from_config(LLAMA32_3B)
    assert spec.total_params == 3_212_749_824
    counts = {
        enc: trainable_params(spec, _train_run(method="prompt", virtual_tokens=20, prompt_encoder=enc))[0]
        for enc in ("none", "mlp", "lstm")
    }
    assert counts == {"none": 61_440, "mlp": 28_382_208, "lstm": 434_279_424}
    plain = estimate(spec, _train_run(method="prompt", virtual_tokens=20))
    lstm = estimate(spec, _train_run(method="prompt", virtual_tokens=20, prompt_encoder="lstm"))
    # fp32 encoder weights and two fp32 Adam states are alive at the start of the backward pass
    grown = lstm.other_phases["start of backward"] - plain.other_phases["start of backward"]
    assert grown == pytest.approx((434_279_424 - 61_440) * 12, rel=1e-6)
    with pytest.raises(RunError, match="--method prompt"):
        make_run(method="lora", prompt_encoder="mlp")


def test_prompt_tokens_lengthen_the_sequence_and_prefix_tokens_the_keys() -> None:
    spec = spec_from_config(LLAMA32_3B)
    base = estimate(spec, _train_run(method="prompt", virtual_tokens=0))
    prompt = estimate(spec, _train_run(method="prompt", virtual_tokens=200))
    assert prompt.breakdown["logits"] == base.breakdown["logits"] * (1024 + 200) / 1024
    short = estimate(spec, _train_run(method="prefix", virtual_tokens=50)).breakdown["activations"]
    long = estimate(spec, _train_run(method="prefix", virtual_tokens=200)).breakdown["activations"]
    assert long - short == pytest.approx(28 * 150 * 2 * 3072 * 2)  # L · Δvt · 2a · c, batch 1


def test_zero3_reduce_bucket_and_modules_to_save_dtype() -> None:
    spec = spec_from_config(LLAMA2_7B)
    z3 = estimate(spec, _train_run(method="lora", weights="fp32", precision="fp32", sharding="zero3"))
    assert z3.breakdown["DeepSpeed buckets"] == pytest.approx(2e8 * 4)  # whole, however few train
    saved = estimate(spec, _train_run(method="lora", weights="bf16", lora_targets="q_proj,v_proj,lm_head"))
    adapters = estimate(spec, _train_run(method="lora", weights="bf16"))
    head = 32000 * 4096
    # the lm_head copy is bf16 like the base: 2 B weight + 2 B grad + 2 × 2 B Adam + 2 B step temporary
    assert saved.other_phases["optimizer step"] - adapters.other_phases["optimizer step"] == pytest.approx(
        head * 10, rel=1e-6
    )


@pytest.mark.parametrize(
    ("model", "overrides", "message"),
    [
        ("7B", {"hidden_size": 7, "heads": 3}, "not a multiple of 3 heads"),
        ("7B", {"kv_heads": 5}, "5 KV heads do not divide 32"),
        ("7B", {"experts": 8, "experts_per_token": 9}, "only 8 experts"),
        ("7B", {"vocab_size": -1}, "--vocab must be a positive number"),
        ("1e30", {}, "too large to be a parameter count"),
        ("5", {}, "too small to be a parameter count"),
        ("seven", {}, "not a size like 7B"),
    ],
)
def test_impossible_models_are_refused_with_the_reason(
    model: str, overrides: dict[str, int], message: str
) -> None:
    from tensorfile.estimate import describe_model
    from tensorfile.estimate.spec import SpecError

    with pytest.raises(SpecError, match=message):
        describe_model(model, **overrides)


def test_cpu_device_is_plain_ram() -> None:
    spec = spec_from_size(7_000_000_000)
    gpu = estimate(spec, make_run(weights="gguf:Q4_K_M", seq_len=4096))
    cpu = estimate(spec, make_run(weights="gguf:Q4_K_M", seq_len=4096, device="cpu"))
    cuda_only = {"workspace", "allocator margin", "CUDA context"}
    assert cuda_only <= set(gpu.breakdown) and not cuda_only & set(cpu.breakdown)
    assert gpu.host_bytes > 0 and cpu.host_bytes == 0  # llama.cpp's host-kept embeddings: the same RAM
    assert cpu.breakdown["weights"] == gpu.breakdown["weights"] + gpu.host_bytes
    assert cpu.per_gpu_bytes == gpu.per_gpu_bytes + gpu.host_bytes - sum(gpu.breakdown[k] for k in cuda_only)
    with pytest.raises(RunError, match="inference on one machine"):
        make_run(method="lora", device="cpu")
    with pytest.raises(RunError, match="--device"):
        make_run(device="tpu")


def test_counters_nest() -> None:
    spec = spec_from_config(LLAMA2_7B)
    run = make_run(seq_len=8192, gen_tokens=512)
    est = estimate(spec, run)
    assert est.bytes_for("allocated") < est.bytes_for("reserved") < est.bytes_for("nvidia-smi")
    assert est.bytes_for("nvidia-smi") == est.per_gpu_bytes


def test_fit_table_and_solvers_agree() -> None:
    spec = spec_from_config(LLAMA2_7B)
    run = make_run(seq_len=2048, gen_tokens=256)
    table = fits(spec, run)
    assert set(table) == {g.name for g in GPUS}
    assert table["A100 80GB"]["fits"] and not table["RTX 3070 8GB"]["fits"]
    assert table["RTX 3070 8GB"]["gpus_needed"] == 2
    gpu = find_gpu("4090")
    best = max_batch(spec, run, gpu)
    assert best > 1
    from dataclasses import replace

    need = estimate(spec, replace(run, batch=best)).per_gpu_bytes
    over = estimate(spec, replace(run, batch=best + 1)).per_gpu_bytes
    assert need <= gpu.memory_bytes < over
    context = max_context(spec, run, gpu)
    assert context > 2048 + 256
    with pytest.raises(Exception, match="ambiguous"):
        find_gpu("a100")


def test_path_inputs_read_shapes_and_dtype() -> None:
    est = estimate_memory(EXAMPLES / "tiny-llama-q8_0.gguf")
    assert est.run.weights == "gguf:Q8_0" and est.run.resolved_engine == "llama.cpp"
    est = estimate_memory(EXAMPLES / "tiny-llama.safetensors")
    assert est.model.total_params > 0


# --- accuracy on measured peaks ------------------------------------------------------------------

ROWS = load_rows(DATA / "memory_inference.json", DATA / "memory_training.json")
# Rows the model still misses by more than 30 %, each understood or at least recorded; a new miss
# fails the test, and so does fixing one without removing it here.
KNOWN_MISSES: set[str] = set()


@pytest.fixture(scope="module")
def checked() -> list:
    return [check_row(row) for row in ROWS]


def test_validation_rows_are_well_formed() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 100
    for row in ROWS:
        assert row["source"]["url"].startswith("https://") and row["source"]["quote"]
        assert str(row["measured"]["value"]).rstrip("0").rstrip(".") in row["source"]["quote"].replace(
            ",", ""
        ), row["id"]


def test_inference_accuracy(checked: list) -> None:
    errors = [abs(c.error) for c in checked if c.kind == "inference"]
    assert len(errors) >= 70
    assert statistics.median(errors) <= 0.08
    assert max(errors) <= 0.30


def test_training_accuracy(checked: list) -> None:
    errors = [abs(c.error) for c in checked if c.kind == "training"]
    assert statistics.median(errors) <= 0.15


def test_readme_states_the_measured_accuracy(checked: list) -> None:
    """The README's accuracy line is the suite's own numbers, not a figure from an older run."""
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    medians = {
        kind: statistics.median(abs(c.error) for c in checked if c.kind == kind)
        for kind in ("inference", "training", "peft")
    }
    assert f"checked against {len(checked)} measured peaks" in readme
    stated = (
        f"median error {medians['inference']:.1%} for inference, {medians['training']:.1%} for full "
        f"training, {medians['peft']:.1%} for LoRA/QLoRA/prompt/prefix tuning"
    ).replace("%", " %")
    assert stated in readme


def test_peft_accuracy(checked: list) -> None:
    errors = [abs(c.error) for c in checked if c.kind == "peft"]
    assert len(errors) >= 52
    assert statistics.median(errors) <= 0.12  # goal 0.15
    assert max(errors) <= 0.45


def test_only_known_rows_miss_by_more_than_30_percent(checked: list) -> None:
    misses = {c.row["id"] for c in checked if abs(c.error) > 0.30}
    assert misses == KNOWN_MISSES


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_json_has_the_documented_keys() -> None:
    out = run_cli("estimate", "7B", "--task", "train", "--method", "qlora", "--grad-ckpt", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("per_gpu_bytes", "breakdown", "counter", "fits", "quick", "formulas", "phase"):
        assert key in data
    assert data["per_gpu_bytes"] == sum(data["breakdown"].values())
    assert data["fits"]["RTX 4090 24GB"]["fits"] is True
    assert {row["setting"] for row in data["quick"]} >= {"BF16 inference", "LoRA", "QLoRA", "Prompt tuning"}


def test_cli_text_report_and_solvers() -> None:
    out = run_cli("estimate", "8B", "--gpu", "4090", "--max-batch", "--max-context", "--explain")
    assert out.returncode == 0, out.stderr
    assert "KV cache" in out.stdout and "largest batch" in out.stdout and "longest context" in out.stdout
    cpu = run_cli("estimate", "7B", "--weights", "gguf:Q4_K_M", "--device", "cpu")
    assert cpu.returncode == 0, cpu.stderr
    assert " of RAM, at " in cpu.stdout and "GPUs (whole process" not in cpu.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("seven",),
        ("1e30",),  # a size, but not a plausible one
        ("7B", "--hidden", "7", "--heads", "3"),
        ("7B", "--kv-heads", "5"),
        ("7B", "--experts", "8", "--experts-per-token", "9"),
        ("7B", "--vocab", "-1"),
        ("7B", "--cuda-context-gib", "nan"),
        ("7B", "--cuda-context-gib", "-1"),
        ("7B", "--weights", "int3"),
        ("7B", "--gpu", "nonesuch", "--max-batch"),
        ("7B", "--max-batch"),
        ("7B", "--task", "inference", "--method", "lora"),
        ("7B", "--batch", "0"),
        ("7B", "--method", "lora", "--grad-accum", "0"),
        ("7B", "--device", "cpu", "--method", "lora"),
        ("7B", "--device", "cpu", "--gpu", "4090", "--max-batch"),
        ("7B", "--method", "lora", "--lora-targets", "nothing"),
        ("7B", "--method", "lora", "--prompt-encoder", "mlp"),
        ("7B", "--task", "bogus"),  # click's own usage errors too
        ("7B", "--batch", "abc"),
        ("7B", "--no-such-option"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    out = run_cli("estimate", *args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
