"""Learning-rate schedules as pure functions of the step, so the UI can plot them before a run."""
from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, peak: float, warmup_steps: int, final: float) -> float:
    """Linear warm-up from ~0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final`` at ``total_steps``.

    (DINO's ``cosine_scheduler`` as a function instead of a precomputed array.)
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * progress))


def schedule_curve(total_steps: int, peak: float, warmup_steps: int, final: float) -> list[float]:
    """The whole schedule, one value per step (for plots)."""
    return [warmup_cosine(s, total_steps, peak, warmup_steps, final) for s in range(total_steps)]
