"""`tensorfile recommend`: the CLI face of tensorfile.recommend (options, report)."""

from __future__ import annotations

import click

from ..targets import TARGET_NAMES
from .common import _console, _print_json, json_option


@click.command()
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
