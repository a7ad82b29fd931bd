"""Epsilon-greedy on empirical means (Sutton and Barto, ch. 2)."""

from __future__ import annotations

import torch
from torch import Tensor

from mesalab.tasks.base import check
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy, argmax_random_tie
from mesalab.tasks.rollout import StepContext


class EpsilonGreedy(CountPolicy):
    """With probability epsilon a uniformly random arm, else the best empirical mean.

    Untried arms count as best (each arm is tried once before exploiting); ties are broken
    uniformly at random.
    """

    name = "epsilon_greedy"

    def __init__(self, epsilon: float = 0.1) -> None:
        ok = isinstance(epsilon, (int, float)) and 0.0 <= epsilon <= 1.0
        check(ok, "epsilon", epsilon, "a probability in [0, 1]")
        self.epsilon = float(epsilon)

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """Draws the same random numbers every trial: explore coin, random arm, tie noise."""
        n = pstate.pulls  # (B, K)
        b, k = n.shape
        explore = torch.rand(b, generator=generator, device=generator.device) < self.epsilon
        random_arm = torch.randint(0, k, (b,), generator=generator, device=generator.device)
        mean = torch.where(n > 0, pstate.successes / n.clamp(min=1.0), torch.inf)
        greedy = argmax_random_tie(mean, generator)
        return torch.where(explore, random_arm, greedy), pstate
