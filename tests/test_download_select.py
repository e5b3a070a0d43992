"""Hub spellings and the safe-first file selection, as pure functions (no server)."""

from __future__ import annotations

import pytest

from tensorfile.download.select import quant_of, select_files
from tensorfile.errors import UsageError
from tensorfile.hub.listing import RemoteFile
from tensorfile.hub.refs import HubRef, UrlRef, is_remote, parse, parse_repo_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf://org/model", HubRef("huggingface", "org/model")),
        (
            "hf://org/model/sub/model.safetensors",
            HubRef("huggingface", "org/model", None, "sub/model.safetensors"),
        ),
        ("hf://org/model@v1.0/config.json", HubRef("huggingface", "org/model", "v1.0", "config.json")),
        ("ms://deepseek-ai/DeepSeek-OCR-2", HubRef("modelscope", "deepseek-ai/DeepSeek-OCR-2")),
        (
            "https://huggingface.co/org/model/resolve/main/model.safetensors",
            HubRef("huggingface", "org/model", "main", "model.safetensors"),
        ),
        ("https://huggingface.co/org/model", HubRef("huggingface", "org/model")),
        (
            "https://modelscope.cn/models/org/model/file/view/master/config.json",
            HubRef("modelscope", "org/model", "master", "config.json"),
        ),
        ("https://example.com/files/model.gguf", UrlRef("https://example.com/files/model.gguf")),
    ],
)
def test_parse_spellings(text: str, expected: HubRef | UrlRef) -> None:
    assert is_remote(text)
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text", ["hf://org", "hf://org/../etc", "hf://datasets/x/y", "hf://org/m/../../x", "hf://o/--x"]
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


def test_bare_repo_id_hub_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_repo_id("org/model").hub == "huggingface"
    assert parse_repo_id("org/model", hub="modelscope").hub == "modelscope"
    monkeypatch.setenv("TENSORFILE_HUB", "modelscope")
    assert parse_repo_id("org/model").hub == "modelscope"
    assert parse_repo_id("hf://org/model").hub == "huggingface"  # the spelling wins over the default
    with pytest.raises(UsageError):
        parse_repo_id("org/model", hub="gitlab")
    assert not is_remote("models/org/model") and not is_remote("./hf_model")


def _files(*names: str) -> list[RemoteFile]:
    return [RemoteFile(n, 1000 if n.endswith((".json", ".md", ".txt", ".model")) else 10**9) for n in names]


def _chosen(selection) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.file.path for c in selection.chosen}


def test_safetensors_beat_pickled_duplicates() -> None:
    files = _files(
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "README.md",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "original/consolidated.00.pth",
        "original/params.json",
        "onnx/model.onnx",
        "model.fp16.safetensors",
    )
    sel = select_files(files)
    assert _chosen(sel) == {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "README.md",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    }
    reasons = {c.file.path: c.reason for c in sel.skipped}
    assert "pickled duplicate" in reasons["pytorch_model-00001-of-00002.bin"]
    assert "original checkpoint" in reasons["original/consolidated.00.pth"]
    assert "ONNX" in reasons["onnx/model.onnx"]
    assert "variant" in reasons["model.fp16.safetensors"]


def test_pickle_only_repo_takes_the_pickle_with_a_note() -> None:
    sel = select_files(_files("config.json", "pytorch_model.bin"))
    assert _chosen(sel) == {"config.json", "pytorch_model.bin"}
    assert any("pickled" in n for n in sel.notes)


def test_gguf_repo_needs_quant_and_lists_them() -> None:
    files = _files("README.md", "m-Q4_K_M.gguf", "m-Q8_0.gguf", "m-IQ2_XXS.gguf", "m-f16-00001-of-00002.gguf")
    with pytest.raises(UsageError, match="IQ2_XXS, Q4_K_M, Q8_0") as err:
        select_files(files)
    assert "--quant" in str(err.value)
    assert _chosen(select_files(files, quant="q4_k_m")) == {"README.md", "m-Q4_K_M.gguf"}
    with pytest.raises(UsageError, match="not in this repo"):
        select_files(files, quant="Q5_K_S")
    assert quant_of("Meta-Llama-3-8B-Instruct.Q4_K_M.gguf") == "Q4_K_M"
    assert quant_of("qwen2.5-7b-instruct-q5_k_m-00001-of-00002.gguf") == "Q5_K_M"
    assert quant_of("model-fp16.gguf") == "F16"


def test_include_exclude_all() -> None:
    files = _files("config.json", "model.safetensors", "pytorch_model.bin")
    assert _chosen(select_files(files, take_all=True)) == {
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
    }
    assert _chosen(select_files(files, include=["*.bin"])) == {"pytorch_model.bin"}
    assert _chosen(select_files(files, exclude=["*.json"])) == {"model.safetensors"}
    with pytest.raises(UsageError):
        select_files(files, include=["*.gguf"])


def test_diffusers_folders_each_prefer_safetensors() -> None:
    files = _files(
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.bin",
    )
    chosen = _chosen(select_files(files))
    assert "unet/diffusion_pytorch_model.safetensors" in chosen
    assert "unet/diffusion_pytorch_model.bin" not in chosen
    assert "vae/diffusion_pytorch_model.bin" in chosen  # its only weights
