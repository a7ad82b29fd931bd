"""Thompson sampling with independent Beta(1, 1) priors (Thompson 1933)."""

from __future__ import annotations

import torch
from torch import Tensor

from mesalab.tasks.base import check
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy
from mesalab.tasks.rollout import StepContext


def sample_beta(a: Tensor, b: Tensor, generator: torch.Generator) -> Tensor:
    """Beta(a, b) draws as a ratio of Gamma draws (torch's Beta sampler takes no generator)."""
    x = torch._standard_gamma(a, generator=generator)
    y = torch._standard_gamma(b, generator=generator)
    return x / (x + y)


class ThompsonSampling(CountPolicy):
    """Pull the arm whose posterior sample of p is highest; arms are treated as independent.

    On the dependent and restless bandits this ignores p2 = 1 - p1 and the jumps, on purpose:
    it is the classic learner of the bandit literature, not an ideal observer.
    """

    name = "thompson"

    def __init__(self, prior_successes: float = 1.0, prior_failures: float = 1.0) -> None:
        check(prior_successes > 0, "prior_successes", prior_successes, "> 0")
        check(prior_failures > 0, "prior_failures", prior_failures, "> 0")
        self.a0, self.b0 = float(prior_successes), float(prior_failures)

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """One posterior draw per arm, then its argmax."""
        theta = sample_beta(self.a0 + pstate.successes, self.b0 + pstate.failures, generator)
        return theta.argmax(dim=1), pstate
