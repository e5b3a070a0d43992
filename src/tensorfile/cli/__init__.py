"""The command-line front end. It parses options, calls the library and renders; it computes nothing.

With --json every command prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from .. import __version__
from ..errors import TensorfileError, UsageError
from ..targets import TARGET_NAMES

JSON_HELP = "Print one JSON document on stdout instead of tables."
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _with_http(data: dict[str, Any], inputs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Add the requests and bytes fetched when any input was read from a hub or URL."""
    from ..hub.refs import is_remote

    if any(is_remote(i) for i in inputs):
        from ..hub.http import STATS

        data["http"] = STATS.snapshot()
    return data


def _fail(message: str, code: int = 2) -> click.exceptions.Exit:
    sys.stderr.write(f"tensorfile: error: {message}\n")
    return click.exceptions.Exit(code)


def _console() -> Any:
    from rich.console import Console

    return Console()


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="tensorfile", message="%(prog)s %(version)s")
def app() -> None:
    """Tell what a model file really is, look inside it without loading it, and check whether
    loading it could run code."""


json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)


@app.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Look inside folders that are not themselves a model.")
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence for each answer.")
def identify(paths: tuple[str, ...], recursive: bool, as_json: bool, verbose: bool) -> None:
    """Tell which model format each PATH (file, folder or glob) really is, by content, and whether
    loading it can run code.

    Exit code 0 when every input was identified, 1 when some are unknown, 2 on an error
    (missing or unreadable path).
    """
    from ..identification import expand

    results = []
    errors = []
    for raw, outcome in expand(list(paths), recursive=recursive):
        if isinstance(outcome, TensorfileError):
            errors.append({"path": outcome.path or raw, "error": outcome.message})
        else:
            results.append(outcome)
    unknown = sum(1 for r in results if not r.known)
    code = 2 if errors else 1 if unknown else 0
    if as_json:
        _print_json(
            _with_http(
                {
                    "results": [r.to_dict() for r in results],
                    "errors": errors,
                    "summary": {
                        "identified": len(results) - unknown,
                        "unknown": unknown,
                        "errors": len(errors),
                    },
                },
                paths,
            )
        )
    else:
        for err in errors:
            sys.stderr.write(f"tensorfile: error: {err['path']}: {err['error']}\n")
        if results:
            from ..render import identify_table

            identify_table(_console(), results, verbose=verbose)
    raise click.exceptions.Exit(code)


@app.command()
@click.argument("path")
@json_option
@click.option(
    "--filter", "pattern", default=None, metavar="GLOB", help="Only tensors whose name matches GLOB."
)
@click.option(
    "--sort",
    type=click.Choice(["name", "size", "params", "dtype", "offset"]),
    default=None,
    help="Order of the tensor table (default: file order).",
)
@click.option(
    "--limit", type=int, default=None, help="Show at most N tensors (default 40 in tables, all in JSON)."
)
@click.option("--all", "show_all", is_flag=True, help="Show every tensor in the table.")
def inspect(
    path: str, as_json: bool, pattern: str | None, sort: str | None, limit: int | None, show_all: bool
) -> None:
    """Show what is inside a model file or folder, from its headers only: tensors, parameter counts,
    dtypes, structure, quantization, training state and metadata. Nothing is loaded or executed."""
    from ..inspection import inspect as inspect_model
    from ..inspection import select_tensors

    info = inspect_model(path)
    if limit is not None and limit < 0:
        raise _fail("--limit must be 0 or more")
    if as_json:
        _print_json(_with_http(info.to_dict(select_tensors(info.tensors, pattern, sort, limit)), [path]))
        return
    from ..render import inspect_report

    shown_limit = None if show_all else (40 if limit is None else limit)
    chosen = select_tensors(info.tensors, pattern, sort)
    console = _console()
    rows = len(chosen) if not shown_limit else min(len(chosen), shown_limit)
    if console.is_terminal and rows + 30 > console.height:
        # A long table goes through the pager (less -R keeps the colours) instead of scrolling away.
        os.environ.setdefault("LESS", "-R")
        with console.pager(styles=True):
            inspect_report(console, info, chosen, shown_limit)
    else:
        inspect_report(console, info, chosen, shown_limit)


@app.command()
@json_option
@click.option("--family", default=None, help="Only formats of this family.")
def formats(as_json: bool, family: str | None) -> None:
    """The model formats tensorfile knows: family, extensions, strengths, safety, tools."""
    from .. import catalog

    if family is not None and family not in catalog.FAMILIES:
        raise _fail(f"unknown family {family!r}; choose from {', '.join(catalog.FAMILIES)}")
    rows = [f for f in catalog.FORMATS if family is None or f.family == family]
    if as_json:
        _print_json({"families": catalog.FAMILIES, "formats": [f.to_dict() for f in rows]})
        return
    from ..render import formats_table

    formats_table(_console(), rows)


@app.command()
@json_option
@click.option("--explain", default=None, help='Explain a tensor-type line like "BF16·I32·F32".')
def dtypes(as_json: bool, explain: str | None) -> None:
    """The tensor types (F32, BF16, F8, I64…, ggml quant types) with bits, block sizes and meaning."""
    from .. import dtypes as dt

    if explain is not None:
        try:
            parts = dt.explain_composite(explain)
        except (KeyError, ValueError) as exc:
            raise _fail(f"cannot explain {explain!r}: {exc}") from None
        if as_json:
            _print_json({"line": explain, "parts": parts})
            return
        from ..render import explain_table

        explain_table(_console(), explain, parts)
        return
    if as_json:
        _print_json({"dtypes": [d.to_dict() for d in dt.DTYPES]})
        return
    from ..render import dtypes_table

    dtypes_table(_console(), dt.DTYPES)


@app.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write SARIF 2.1.0 to FILE ('-': print it instead of the report).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low", "info"]),
    default="high",
    show_default=True,
    help="Lowest severity that makes the exit code 1.",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Parallel processes (default: CPUs)."
)
@click.option("-v", "--verbose", is_flag=True, help="Also list info and low findings and clean files.")
def scan(
    paths: tuple[str, ...],
    as_json: bool,
    sarif_file: str | None,
    fail_on: str,
    jobs: int | None,
    verbose: bool,
) -> None:
    """Find what could run code when each PATH (file or folder, recursively) is loaded — without
    loading, importing or unpickling anything from it.

    Exit code 0 when nothing reaches --fail-on, 1 when something does, 2 when a file could not
    be scanned (an unreadable or undecidable file is never reported as clean).
    """
    from ..scan import scan as run_scan

    if sarif_file == "-" and as_json:
        raise UsageError("--sarif - and --json both print to standard output; choose one")
    report = run_scan(paths, fail_on=fail_on, jobs=jobs)
    if sarif_file:
        from ..atomic import write_text_atomic
        from ..scan.sarif import to_sarif

        sarif = json.dumps(to_sarif(report), indent=2)
        if sarif_file == "-":  # SARIF on stdout, for CI steps that pipe it on
            click.echo(sarif)
        else:
            write_text_atomic(sarif_file, sarif)
    if as_json:
        _print_json(_with_http(report.to_dict(), paths))
    elif sarif_file != "-":
        from ..scan.report import render_report

        render_report(_console(), report, verbose=verbose)
    raise click.exceptions.Exit(report.exit_code)


@app.command()
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


@app.command()
@click.argument("a")
@click.argument("b")
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute tolerance.")
@click.option(
    "--rtol", type=float, default=0.0, show_default=True, help="Relative tolerance (of B's values)."
)
@click.option(
    "--trust", is_flag=True, help="Read pickles that import more than tensor classes (never executed)."
)
@click.option("-a", "--all", "show_all", is_flag=True, help="List identical tensors too.")
@json_option
def diff(a: str, b: str, atol: float, rtol: float, trust: bool, show_all: bool, as_json: bool) -> None:
    """Compare two models tensor by tensor: missing and extra names, dtype and shape changes, the
    largest absolute and relative differences.

    Exit code 0 when both hold the same names and shapes and every value is within
    |a - b| <= atol + rtol * |b|; 1 when not; 2 on an error.
    """
    from ..convert.compare import diff as run_diff
    from ..convert.report import render_diff

    report = run_diff(a, b, atol=atol, rtol=rtol, trust=trust)
    if as_json:
        _print_json(report.to_dict())
    else:
        render_diff(_console(), report, show_all=show_all)
    raise click.exceptions.Exit(report.exit_code)


def _choice(*values: str) -> click.Choice:
    return click.Choice(values, case_sensitive=False)


@app.command()
@click.argument("model")
@click.option(
    "--task", type=_choice("inference", "train"), help="Default: train for PEFT methods, else inference."
)
@click.option(
    "--method", type=_choice("full", "lora", "qlora", "prompt", "prefix"), default="full", show_default=True
)
@click.option(
    "--weights",
    help="fp32|fp16|bf16|fp8|int8|int4|nf4|nf4-dq|fp4|gptq|awq|gguf:<TYPE> (default: as stored, else bf16).",
)
@click.option("--compute-dtype", type=_choice("bf16", "fp16", "fp32"), default="bf16", show_default=True)
@click.option(
    "--precision", type=_choice("amp", "bf16-true", "fp32"), help="Training math (default from --weights)."
)
@click.option("--batch", type=int, default=1, show_default=True)
@click.option(
    "--grad-accum",
    type=int,
    default=1,
    show_default=True,
    help="Training: micro-batches whose gradients accumulate before each optimizer step.",
)
@click.option(
    "--seq-len", type=int, default=2048, show_default=True, help="Prompt or training sequence length."
)
@click.option("--gen-tokens", type=int, default=256, show_default=True, help="Tokens generated (inference).")
@click.option(
    "--kv-dtype", help="KV cache dtype: fp16|bf16|fp8|int8|int4|q8_0|q4_0 (default: compute dtype)."
)
@click.option("--grad-ckpt/--no-grad-ckpt", default=False, show_default=True, help="Gradient checkpointing.")
@click.option(
    "--flash-attn/--no-flash-attn", default=True, show_default=True, help="Memory-efficient attention."
)
@click.option(
    "--optimizer",
    type=_choice("adamw", "adamw-fused", "adamw-8bit", "paged-adamw-8bit", "sgd", "adafactor"),
    default="adamw",
    show_default=True,
)
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option("--lora-targets", help="Comma-separated module names or all-linear (default q_proj,v_proj).")
@click.option(
    "--virtual-tokens", type=int, default=20, show_default=True, help="Prompt/prefix tuning tokens."
)
@click.option(
    "--prompt-encoder", type=_choice("none", "mlp", "lstm"), help="P-tuning (--method prompt): the encoder."
)
@click.option("--gpus", type=int, default=1, show_default=True)
@click.option("--sharding", type=_choice("none", "ddp", "zero1", "zero2", "zero3", "fsdp"), default="none")
@click.option(
    "--fsdp-frozen-grads/--no-fsdp-frozen-grads",
    default=False,
    show_default=True,
    help="FSDP + PEFT: frozen weights share flat parameters with the adapters and get gradients "
    "(use_orig_params with per-block wrapping, e.g. Lightning Fabric / LitGPT).",
)
@click.option(
    "--offload", type=_choice("cpu"), help="Keep optimizer states (zero3: also parameters) in CPU memory."
)
@click.option(
    "--counter",
    type=_choice("allocated", "reserved", "nvidia-smi"),
    default="nvidia-smi",
    show_default=True,
    help="Which number you will compare with: torch's max allocated / reserved, or nvidia-smi.",
)
@click.option(
    "--cuda-context-gib",
    type=float,
    default=0.5,
    show_default=True,
    help="The CUDA context and kernels in the nvidia-smi view (older CUDA without lazy loading: 1-2).",
)
@click.option(
    "--logits", type=_choice("last", "all"), default="last", help="Prefill logits (all: transformers < 4.45)."
)
@click.option("--engine", type=_choice("auto", "transformers", "llama.cpp"), default="auto")
@click.option(
    "--device",
    type=_choice("gpu", "cpu"),
    default="gpu",
    show_default=True,
    help="cpu: the RAM of a CPU-only run (no CUDA context, workspace or allocator margin).",
)
@click.option("--layers", type=int)
@click.option("--hidden", "hidden_size", type=int)
@click.option("--heads", type=int)
@click.option("--kv-heads", type=int)
@click.option("--head-dim", type=int)
@click.option("--vocab", "vocab_size", type=int)
@click.option("--intermediate", "intermediate_size", type=int)
@click.option("--experts", type=int, help="MoE: routed experts.")
@click.option("--experts-per-token", type=int, help="MoE: active experts per token.")
@click.option("--sliding-window", type=int)
@click.option(
    "--gpu", "gpu_name", help="A GPU from the table for --max-batch / --max-context (e.g. 4090, a100-80)."
)
@click.option("--max-batch", is_flag=True, help="Largest batch that fits on one --gpu.")
@click.option("--max-context", is_flag=True, help="Longest context that fits on one --gpu.")
@click.option("--explain", is_flag=True, help="Show the formula of every line.")
@json_option
def estimate(
    model: str,
    gpu_name: str | None,
    max_batch: bool,
    max_context: bool,
    explain: bool,
    as_json: bool,
    **settings: Any,
) -> None:
    """How much GPU memory MODEL needs to run or fine-tune, and which GPUs hold it.

    MODEL is a model file or folder, a config.json, or a size like 7B (shapes then assumed from a
    similar open model unless --layers/--hidden/... say otherwise).
    """
    from ..estimate import estimate_memory
    from ..estimate.gpus import find_gpu
    from ..estimate.report import build_report, render_estimate

    if (max_batch or max_context) and not gpu_name:
        raise _fail("--max-batch and --max-context need --gpu NAME")
    gpu = find_gpu(gpu_name) if gpu_name else None
    settings = {k: (v.lower() if isinstance(v, str) and k != "weights" else v) for k, v in settings.items()}
    training = settings.get("task") == "train" or settings.get("method") != "full"
    if training and settings.get("gpus", 1) > 1 and settings.get("sharding") == "none":
        settings["sharding"] = "ddp"  # several GPUs training without sharding: data parallel
    est = estimate_memory(model, **settings)
    report = build_report(est, gpu, max_batch, max_context)
    if as_json:
        _print_json(report.to_dict())
    else:
        render_estimate(_console(), report, explain=explain)


@app.command()
@click.argument("model")
@click.option(
    "--target",
    required=True,
    type=click.Choice(TARGET_NAMES, case_sensitive=False),
    help="Where the model will run or go.",
)
@click.option(
    "--memory",
    "memory_gib",
    type=float,
    metavar="GIB",
    help="Memory available on the target (RAM for CPUs and phones, per GPU for servers and training); "
    "the quantization is chosen to fit it.",
)
@click.option("--seq-len", type=int, help="Prompt tokens (training: sequence length); default per target.")
@click.option("--gen-tokens", type=int, help="Tokens generated; default per target.")
@json_option
def recommend(
    model: str,
    target: str,
    memory_gib: float | None,
    seq_len: int | None,
    gen_tokens: int | None,
    as_json: bool,
) -> None:
    """Which format and quantization to use for MODEL on a target, what it will weigh and need, and
    the commands to get there (the seed's one-line selection guide, sized by `estimate`).

    MODEL is a model file or folder, a config.json, or a size like 7B.
    """
    from ..recommend import recommend as make_recommendation
    from ..recommend_report import render_recommendation

    rec = make_recommendation(model, target, memory_gib, seq_len=seq_len, gen_tokens=gen_tokens)
    if as_json:
        _print_json(rec.to_dict())
    else:
        render_recommendation(_console(), rec)


from .download import register as _register_download  # noqa: E402 (needs the helpers above)

_register_download(app, json_option, _console, _print_json)


def main() -> None:
    try:
        # Not click's standalone mode: it turns Ctrl-C into "Aborted!" with exit 1, which for
        # `scan` and `diff` means "unsafe" / "different".
        code = app.main(prog_name="tensorfile", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        sys.stderr.write("tensorfile: interrupted\n")
        sys.exit(130)
    except click.exceptions.UsageError as exc:  # bad option or argument: one line, like any bad input
        sys.stderr.write(f"tensorfile: error: {exc.format_message()}\n")
        sys.exit(2)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TensorfileError as exc:
        sys.stderr.write(f"tensorfile: error: {exc}\n")
        sys.exit(2)
    except OSError as exc:  # disk full, permission lost mid-write: one line, outputs already rolled back
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"tensorfile: error: {where}{exc.strerror or exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("tensorfile: interrupted\n")
        sys.exit(130)
