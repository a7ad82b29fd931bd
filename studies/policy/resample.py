"""Bootstrap over tasks for the per-family analyses.

Episodes (tasks) are the independent units: trials within an episode share the task and the
policy's memory, so every interval here resamples whole tasks. A resample is a weight vector
over tasks (how many times each was drawn), which lets an analysis turn per-task counts into
resampled statistics with one matrix product (``weights @ counts``) instead of re-running it.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from mesalab.studies.policy.metrics import NUM_RESAMPLES
from mesalab.tasks.base import check


def bootstrap_weights(
    num_tasks: int, num_resamples: int = NUM_RESAMPLES, seed: int = 0, device: str = "cpu"
) -> Tensor:
    """Multiplicities of every task in each resample, (R, N) float64; each row sums to N."""
    check(isinstance(num_tasks, int) and num_tasks >= 1, "num_tasks", num_tasks, "an int >= 1")
    check(
        isinstance(num_resamples, int) and num_resamples >= 2,
        "num_resamples",
        num_resamples,
        "an int >= 2",
    )
    g = torch.Generator(device=device).manual_seed(seed)
    idx = torch.randint(0, num_tasks, (num_resamples, num_tasks), generator=g, device=device)
    w = torch.zeros(num_resamples, num_tasks, dtype=torch.float64, device=device)
    return w.scatter_add_(1, idx, torch.ones_like(w))  # (R, N)


def percentile_ci(samples: Tensor, level: float = 0.95) -> Tensor:
    """Percentile interval over the first dim of (R, ...) resampled statistics: (..., 2)."""
    check(0.0 < level < 1.0, "level", level, "in (0, 1)")
    a = (1.0 - level) / 2
    q = torch.tensor([a, 1.0 - a], dtype=torch.float64, device=samples.device)
    return rearrange(torch.quantile(samples.double(), q, dim=0), "two ... -> ... two")  # (..., 2)


def mean_with_ci(
    values: Tensor, weights: Tensor, level: float = 0.95
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean over tasks of (N, ...) values, its resampled means (R, ...) and interval (..., 2)."""
    flat = rearrange(values.double(), "n ... -> n (...)")  # (N, K)
    mean = flat.mean(dim=0)
    boot = weights @ flat / flat.shape[0]  # (R, K)
    shape = values.shape[1:]
    boot = boot.reshape((-1, *shape))  # (R, ...): reshape, as einops cannot split (...) back
    return mean.reshape(shape), boot, percentile_ci(boot, level)


def ratio_with_ci(
    num: Tensor, den: Tensor, weights: Tensor, level: float = 0.95
) -> tuple[float, list[float]]:
    """Ratio of the means of two paired (N,) per-task values, with its bootstrap interval."""
    both = torch.stack([num.double(), den.double()], dim=1)  # (N, 2)
    boot = weights @ both  # (R, 2): the 1/N cancels in the ratio
    ratio = float(num.double().mean() / den.double().mean())
    ci = percentile_ci(boot[:, 0] / boot[:, 1], level)
    return ratio, ci.tolist()
