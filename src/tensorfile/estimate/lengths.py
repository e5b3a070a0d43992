"""How long each stack's sequence is, per family: the input (--seq-len), a length the model fixes
(Whisper's 1500 frames, ViT's patches), the target an encoder-decoder trains on (--target-len),
each at most as long as learned absolute positions allow."""

from __future__ import annotations

from .run import RunSpec
from .spec import ModelSpec


def encoder_length(spec: ModelSpec, run: RunSpec) -> int:
    """The encoder's sequence: fixed by the model (Whisper's frames, ViT's patches) or the input's,
    at most as long as the model's learned positions."""
    if spec.encoder_seq:
        return spec.encoder_seq
    return min(run.seq_len, spec.max_positions) if spec.max_positions else run.seq_len


def length_notes(spec: ModelSpec, run: RunSpec, used: int) -> list[str]:
    if spec.encoder_seq and spec.encoder_seq != run.seq_len:
        return [f"sequence fixed by the model at {spec.encoder_seq} (--seq-len {run.seq_len} not used)"]
    if used < run.seq_len:
        return [
            f"--seq-len {run.seq_len} is past the model's {spec.max_positions} positions: estimated at {used}"
        ]
    return []


def target_length(spec: ModelSpec, run: RunSpec) -> int:
    """An encoder-decoder's decoder sequence in training: --target-len (default --seq-len)."""
    target = run.target_len or run.seq_len
    return min(target, spec.max_positions) if spec.max_positions else target
