"""The Bernoulli Gittins index with Beta priors (Gittins 1979), for any number of arms.

The prior of every arm is Beta(a0, b0), or uniform on a range ``[p_low, p_high]`` (a family
whose arms are drawn from U(p_low, p_high): its ideal reference must know that range; with
the Beta(1, 1) prior, on p ~ U(0, 0.3) with 5 arms, Gittins explores arms it should know are
poor, and its regret is 1.3x that of the index with the right prior). The index of an arm whose
posterior is Beta(a0 + s, b0 + f) is the per-trial reward
``lam`` of a safe arm that makes an agent with discount ``gamma`` indifferent between
retiring to it for good and continuing to pull the risky arm (the calibration, or
retirement, characterisation). For a grid of ``lam`` values the optimal-stopping value is
computed for every (s, f) by backward induction over s + f, vectorized over states and
``lam``; the index of a state is where "continue minus retire" crosses zero, located between
grid points by linear interpolation.

Horizon truncation: the induction starts at depth s + f = num_trials + extra, where
``gamma ** extra <= tol``; there the posterior mean is frozen (value max(lam, mean) / (1 -
gamma)). Every state a num_trials-trial episode can reach has at least ``extra`` levels of
exact induction below it, so the truncation moves its continuation value by at most about
``tol / (1 - gamma)`` in value, i.e. ``tol`` in index units.

With a range prior the posterior after (s, f) is Beta(1 + s, 1 + f) cut to the range, and
the induction reads its predictive success probability from
:func:`~mesalab.tasks.references.bayes_dp.predictive_success` (exact Gauss-Legendre
quadrature) instead of (a0 + s) / (a0 + b0 + s + f); the full range [0, 1] is Beta(1, 1) and
takes the closed form, so its table is the same to the bit.

The table depends only on (gamma, a0, b0, range, num_trials, grid); it is computed once in
numpy and cached. Arms are treated as independent (also on the dependent bandit: Gittins' theorem
concerns independent arms; the exact policy for p2 = 1 - p1 is ``bayes_optimal``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from mesalab.tasks.bandit import check_unit_range
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy
from mesalab.tasks.references.bayes_dp import predictive_success
from mesalab.tasks.rollout import StepContext

#: float32 halves the memory traffic of the induction; its rounding (~1e-7 relative) is far
#: below the grid's interpolation error
DTYPE = np.float32


@functools.lru_cache(maxsize=8)
def gittins_table(
    gamma: float,
    num_trials: int,
    a0: float = 1.0,
    b0: float = 1.0,
    tol: float = 1e-4,
    grid_size: int = 2001,
    p_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Gittins index of Beta(a0 + s, b0 + f) for s + f <= num_trials, (N + 1, N + 1) float64.

    With ``p_range`` other than (0, 1) the prior is uniform on that range (a0 = b0 = 1 only).
    Entries with s + f > num_trials are NaN.
    """
    check(0.0 < gamma < 1.0, "gamma", gamma, "a discount in (0, 1)")
    extra = max(1, math.ceil(math.log(tol) / math.log(gamma)))
    depth = num_trials + extra
    pred = None  # a range prior's predictive success probabilities, (depth + 1, depth + 1)
    if tuple(p_range) != (0.0, 1.0):
        check_unit_range(*p_range)
        check((a0, b0) == (1.0, 1.0), "prior", (a0, b0), "Beta(1, 1) with a p_range")
        pred = predictive_success(depth, *p_range)

    def success(s: np.ndarray, n: int) -> np.ndarray:
        """P(success | s successes in n pulls), per s."""
        if pred is None:
            return (a0 + s) / (a0 + b0 + n)
        return pred[s, n - s]

    lam = np.linspace(0.0, 1.0, grid_size, dtype=DTYPE)  # (L,)
    retire = lam / DTYPE(1.0 - gamma)  # (L,)
    table = np.full((num_trials + 1, num_trials + 1), np.nan)
    # Truncation level: s = 0..depth, f = depth - s, posterior mean frozen.
    s = np.arange(depth + 1)
    mean = success(s, depth).astype(DTYPE)
    value = np.maximum(retire[None, :], mean[:, None] / (1.0 - gamma))  # (depth + 1, L)
    for n in range(depth - 1, -1, -1):
        s = np.arange(n + 1)
        p = success(s, n).astype(DTYPE)[:, None]  # (n + 1, 1)
        # Children of (s, n - s): success -> (s + 1, n - s), failure -> (s, n + 1 - s).
        cont = p * (1.0 + gamma * value[1:]) + (1.0 - p) * gamma * value[:-1]  # (n + 1, L)
        if n <= num_trials:
            table[s, n - s] = _crossing(cont - retire[None, :], lam)
        value = np.maximum(retire[None, :], cont)
    return table


def _crossing(diff: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Per row, the ``lam`` where ``diff`` (decreasing in lam) first reaches zero."""
    k = np.argmax(diff <= 0.0, axis=1)  # first grid point where retiring is optimal
    k = np.clip(k, 1, lam.size - 1)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, k - 1], diff[rows, k]
    frac = np.clip(d0 / np.where(d0 - d1 > 0, d0 - d1, 1.0), 0.0, 1.0)
    return lam[k - 1] + frac * (lam[k] - lam[k - 1])


class GittinsIndex(CountPolicy):
    """Pull the arm with the highest Gittins index; ties to the lowest arm."""

    name = "gittins"

    def __init__(
        self,
        gamma: float = 0.97,
        prior_successes: float = 1.0,
        prior_failures: float = 1.0,
        p_low: float = 0.0,
        p_high: float = 1.0,
    ) -> None:
        ok = isinstance(gamma, (int, float)) and 0.0 < gamma < 1.0
        check(ok, "gamma", gamma, "a discount in (0, 1)")
        check(prior_successes > 0, "prior_successes", prior_successes, "> 0")
        check(prior_failures > 0, "prior_failures", prior_failures, "> 0")
        check_unit_range(p_low, p_high)
        self.gamma, self.a0, self.b0 = float(gamma), float(prior_successes), float(prior_failures)
        self.p_range = (float(p_low), float(p_high))
        if self.p_range != (0.0, 1.0):
            ok = (self.a0, self.b0) == (1.0, 1.0)
            check(ok, "prior_successes", prior_successes, "1 with a p_low/p_high range prior")

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> ArmCounts:
        """Zero counts; the index table for this horizon is built (or fetched from cache)."""
        table = gittins_table(self.gamma, family.num_trials, self.a0, self.b0, p_range=self.p_range)
        self.table = torch.as_tensor(np.nan_to_num(table), dtype=torch.float32)
        self.table = self.table.to(generator.device)
        return super().reset(family, batch_size, generator)

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """Look up every arm's index and take the argmax."""
        s, f = pstate.successes.long(), pstate.failures.long()  # (B, K)
        index = self.table[s, f]  # (B, K)
        return index.argmax(dim=1), pstate
