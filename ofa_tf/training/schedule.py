"""Learning rate: linear warm-up, then cosine decay per iteration (reference `calc_learning_rate`)."""

from __future__ import annotations

import math

REFERENCE_BATCH = 64  # per-GPU batch of the reference; lr = base_lr * global_batch / 64


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The reference's linear rule `init_lr = base_lr * n_gpus` with 64 images per GPU."""
    return base_lr * global_batch / REFERENCE_BATCH


def learning_rate(step: int, warmup_steps: int, cosine_steps: int, base_lr: float, peak_lr: float) -> float:
    """LR at `step` of a phase: base_lr -> peak_lr linearly, then 0.5 * peak * (1 + cos(pi t / T))."""
    if step < warmup_steps:
        return base_lr + (peak_lr - base_lr) * step / warmup_steps
    t = min(step - warmup_steps, cosine_steps)
    return 0.5 * peak_lr * (1.0 + math.cos(math.pi * t / max(cosine_steps, 1)))
