"""The exact Bayes-optimal policy for two independent Bernoulli arms: finite-horizon DP.

With independent priors on p1 and p2, the posterior after t trials depends only on the
success/failure counts (s1, f1, s2, f2), s1 + f1 + s2 + f2 = t. Backward induction over t
gives the expected future reward of both actions in every such state; the policy pulls the
better one (ties, up to 1e-9, to arm 0). A layer t is the cube (n1, s1, s2) with n1 = s1 + f1
pulls of arm 1 (f2 = t - n1 - s2): about 4.6M states in all for T = 100, computed one layer
at a time in vectorized numpy and cached per (num_trials, prior range).

The prior is the family's training prior, p_i ~ U(p_low, p_high) independently; the
predictive probability of a success after (s, f) is a ratio of two integrals of
p^s (1 - p)^f over the range, computed exactly by Gauss-Legendre quadrature (the integrands
are polynomials of degree <= num_trials + 1). For U(0, 1) it is (s + 1) / (s + f + 2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy
from mesalab.tasks.rollout import StepContext

TIE_TOLERANCE = 1e-9


def predictive_success(num_trials: int, p_low: float = 0.0, p_high: float = 1.0) -> np.ndarray:
    """P(success | s successes, f failures) under p ~ U(p_low, p_high), (N+1, N+1).

    Exact (to rounding) where s + f <= num_trials, the only entries the DP reads.
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_trials // 2 + 4)
    x = p_low + (p_high - p_low) * (nodes + 1.0) / 2.0  # (J,) nodes on the prior's range
    k = np.arange(num_trials + 2)
    # log of p^s (1 - p)^f at every node, kept in logs so high powers do not underflow
    log_ps, log_qs = k[:, None] * np.log(x)[None], k[:, None] * np.log1p(-x)[None]  # (N+2, J)
    logw = np.log(weights)
    log_int = np.logaddexp.reduce(log_ps[:, None, :] + log_qs[None, :, :] + logw, axis=-1)
    n = num_trials + 1
    return np.exp(log_int[1 : n + 1, :n] - log_int[:n, :n])  # (s, f) -> ratio


@dataclass(frozen=True)
class DPTable:
    """Decisions of the two-arm DP for every reachable state, and the value of the start."""

    pull_arm2: np.ndarray  # bool, all layers' states concatenated in rank order
    layer_offset: np.ndarray  # (T,) start of layer t in ``pull_arm2``
    n1_offset: np.ndarray  # (T, T) start of the block with n1 pulls of arm 1 within layer t
    value: float  # expected total reward of the optimal policy from the first trial


@functools.lru_cache(maxsize=4)
def two_arm_table(num_trials: int, p_low: float = 0.0, p_high: float = 1.0) -> DPTable:
    """Backward induction over the count states of a 2-armed Bernoulli bandit (cached)."""
    check(isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, ">= 1")
    big_t = num_trials
    pred = predictive_success(big_t, p_low, p_high)  # (T+1, T+1)
    value = np.zeros((big_t + 1,) * 3)  # layer T: nothing left to earn
    layers: list[np.ndarray] = []
    for t in range(big_t - 1, -1, -1):
        m = t + 1
        n1, s1, s2 = np.ogrid[:m, :m, :m]  # cube (n1, s1, s2) of layer t
        f1, f2 = n1 - s1, t - n1 - s2
        valid = (f1 >= 0) & (f2 >= 0)
        p1 = pred[s1, np.clip(f1, 0, big_t)]  # (m, m, 1)
        p2 = pred[s2, np.clip(f2, 0, big_t)]  # (m, 1, m)
        # Next layer (t + 1), same coordinates: arm 1 moves n1 (and s1 on success),
        # arm 2 keeps n1 and moves s2 on success (f2 grows implicitly on failure).
        q1 = p1 * (1.0 + value[1 : m + 1, 1 : m + 1, :m]) + (1.0 - p1) * value[1 : m + 1, :m, :m]
        q2 = p2 * (1.0 + value[:m, :m, 1 : m + 1]) + (1.0 - p2) * value[:m, :m, :m]
        layers.append((q2 > q1 + TIE_TOLERANCE)[valid])  # C order of (n1, s1, s2) = rank
        value = np.where(valid, np.maximum(q1, q2), 0.0)
    layers.reverse()
    sizes = np.array([a.size for a in layers])
    layer_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Within layer t the block of n1 holds (n1 + 1) * (t - n1 + 1) states.
    t_idx, n_idx = np.arange(big_t)[:, None], np.arange(big_t)[None, :]
    block = np.where(n_idx <= t_idx, (n_idx + 1) * (t_idx - n_idx + 1), 0)
    n1_offset = np.concatenate([np.zeros((big_t, 1), dtype=np.int64), block.cumsum(1)[:, :-1]], 1)
    return DPTable(np.concatenate(layers), layer_offset, n1_offset, float(value[0, 0, 0]))


class TwoArmDynamicProgramming(CountPolicy):
    """Bayes-optimal for two independent arms with the family's uniform training prior."""

    name = "bayes_optimal"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> ArmCounts:
        """Build (or fetch) the DP table for this horizon and prior; zero counts."""
        check(family.num_actions == 2, "num_arms", family.num_actions, "2 for the exact DP")
        lo, hi = getattr(family, "p_low", 0.0), getattr(family, "p_high", 1.0)
        table = two_arm_table(family.num_trials, lo, hi)
        dev = generator.device
        self.pull_arm2 = torch.as_tensor(table.pull_arm2, device=dev)
        self.layer_offset = torch.as_tensor(table.layer_offset, device=dev)
        self.n1_offset = torch.as_tensor(table.n1_offset, device=dev)
        return super().reset(family, batch_size, generator)

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """Look up the optimal action of the current count state."""
        s, n = pstate.successes.long(), pstate.pulls.long()  # (B, 2)
        t, n1 = n.sum(dim=1), n[:, 0]
        idx = self.layer_offset[t] + self.n1_offset[t, n1] + s[:, 0] * (t - n1 + 1) + s[:, 1]
        return self.pull_arm2[idx].long(), pstate
