"""`tensorfile convert`: the CLI face of tensorfile.convert (options, progress, report)."""

from __future__ import annotations

import sys

import click

from .common import _console, _print_json, json_option


@click.command()
@click.argument("source")
@click.argument("destination")
@click.option(
    "--to",
    type=click.Choice(["safetensors", "npz", "flax", "gguf"]),
    default=None,
    help="Output format (default: from DESTINATION's extension; a folder gets safetensors).",
)
@click.option(
    "--quant",
    default=None,
    metavar="TYPE",
    help="GGUF output type, as llama-quantize names it: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
    "Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K (default: the source's float type).",
)
@click.option(
    "--dtype",
    default=None,
    help="Cast floating tensors: f32, f16, bf16, f8_e4m3 or f8_e5m2 (round to nearest even, as torch).",
)
@click.option(
    "--include", multiple=True, metavar="GLOB", help="Only tensors whose name matches (repeatable)."
)
@click.option(
    "--exclude", multiple=True, metavar="GLOB", help="Leave out tensors whose name matches (repeatable)."
)
@click.option(
    "--rename",
    multiple=True,
    metavar="OLD=NEW",
    help="Replace a name prefix, e.g. 'model.=' strips it (repeatable).",
)
@click.option(
    "--max-shard-size",
    default=None,
    metavar="SIZE",
    help="Largest safetensors shard in a folder output, e.g. 5GB or 2GiB (default 5GB).",
)
@click.option(
    "--force", is_flag=True, help="Replace DESTINATION if it exists (only once the new one is complete)."
)
@click.option(
    "--trust",
    is_flag=True,
    help="Convert a pickle that imports more than tensor classes (still never executed).",
)
@json_option
def convert(
    source: str,
    destination: str,
    to: str | None,
    quant: str | None,
    dtype: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    rename: tuple[str, ...],
    max_shard_size: str | None,
    force: bool,
    trust: bool,
    as_json: bool,
) -> None:
    """Convert model weights: PyTorch .pt/.bin/.ckpt (read without torch, nothing executed),
    safetensors (single or sharded), .npz, Flax msgpack, Keras .h5 and GGUF to safetensors (a file,
    or a sharded folder with its index), .npz or Flax msgpack; and a Hugging Face model (or a GGUF
    file) to GGUF at any llama.cpp type, the same bytes llama.cpp's converter and llama-quantize
    write: `tensorfile convert MODEL_DIR model-Q4_K_M.gguf --quant Q4_K_M`.

    A model folder converts to a folder: weights converted, config and tokenizer files copied.
    Tensors stream one chunk at a time; the output appears only when complete.
    """
    from ..convert.report import ConvertProgress, render_convert
    from ..convert.run import convert as run_convert

    with ConvertProgress(enabled=not as_json and sys.stderr.isatty()) as progress:
        result = run_convert(
            source,
            destination,
            to=to,
            quant=quant,
            dtype=dtype,
            include=list(include),
            exclude=list(exclude),
            rename=list(rename),
            max_shard_size=max_shard_size,
            force=force,
            trust=trust,
            progress=progress.start,
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        render_convert(_console(), result)
