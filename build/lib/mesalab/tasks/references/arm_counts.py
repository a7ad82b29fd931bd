"""Success/failure counts per arm: the sufficient statistic of Beta-Bernoulli learners.

The count-based references (Thompson, UCB1, epsilon-greedy, Gittins, the exact DP) all treat
every reward as a Bernoulli outcome of the arm pulled; they differ only in how they act.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


@dataclass
class ArmCounts:
    """Successes and failures of every arm so far in the episode."""

    successes: Tensor  # (B, K) float
    failures: Tensor  # (B, K) float

    @property
    def pulls(self) -> Tensor:
        """Number of pulls of every arm, (B, K)."""
        return self.successes + self.failures


def add_outcome(counts: ArmCounts, action: Tensor, reward: Tensor) -> ArmCounts:
    """Counts after pulling ``action`` (B,) and seeing ``reward`` (B,) in [0, 1]."""
    hit = torch.nn.functional.one_hot(action.long(), counts.successes.shape[1]).float()  # (B, K)
    r = reward.float()[:, None]  # (B, 1)
    return ArmCounts(counts.successes + hit * r, counts.failures + hit * (1.0 - r))


def argmax_random_tie(values: Tensor, generator: torch.Generator) -> Tensor:
    """Row-wise argmax with ties broken uniformly at random (draws (B, K) uniforms always)."""
    noise = torch.rand(values.shape, generator=generator, device=generator.device)
    is_max = values >= values.max(dim=1, keepdim=True).values
    return torch.where(is_max, noise, -1.0).argmax(dim=1)


class CountPolicy(Policy):
    """A policy whose state is the arms' success/failure counts."""

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> ArmCounts:
        """Zero counts for every arm."""
        zeros = torch.zeros(batch_size, family.num_actions, device=generator.device)
        return ArmCounts(zeros, zeros.clone())

    def update(
        self, pstate: ArmCounts, ctx: StepContext, action: Tensor, out: StepOut
    ) -> ArmCounts:
        """Count the outcome of the arm pulled."""
        return add_outcome(pstate, action, out.reward)
