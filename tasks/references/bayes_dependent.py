"""The exact Bayes-optimal policy of the dependent bandit (p2 = 1 - p1).

Pulling arm 1 and seeing r, or pulling arm 2 and seeing 1 - r, is the same evidence about p1:
a "p1-success" has probability p1 either way. So the posterior's evolution does not depend on
the action, every pull is equally informative, and greedy on the posterior mean of p1 is
Bayes-optimal (no action buys information another would not). The posterior is
prior(p1) * p1^k * (1 - p1)^m after k p1-successes and m p1-failures; for any prior
symmetric under p1 -> 1 - p1 (every prior of :mod:`mesalab.tasks.dependent_bandit` is), its mean
exceeds 1/2 exactly when k > m. The rule is therefore: arm 1 if k >= m else arm 2 (ties, where
both arms are worth exactly 1/2, to arm 1 = index 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


class DependentBayesOptimal(Policy):
    """Greedy on the Beta posterior of p1 (counts k, m of p1-successes and p1-failures)."""

    name = "bayes_optimal"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """k - m, the evidence for arm 1, starts at 0; (B,)."""
        return torch.zeros(batch_size, device=generator.device)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Arm index 0 when k >= m, else 1."""
        return (pstate < 0).long(), pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """A reward on arm 1 or a failure on arm 2 is a p1-success (+1), else a p1-failure."""
        p1_success = torch.where(action == 0, out.reward, 1.0 - out.reward)
        return pstate + 2.0 * p1_success - 1.0
