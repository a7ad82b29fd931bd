"""UCB1 (Auer, Cesa-Bianchi and Fischer 2002): empirical mean plus an exploration bonus."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mesalab.tasks.base import check
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy
from mesalab.tasks.rollout import StepContext


class UCB1(CountPolicy):
    """Pull argmax of mean + c * sqrt(ln n / n_a); every arm once first, ties to the lowest arm.

    ``c = sqrt(2)`` is the original UCB1 bonus sqrt(2 ln n / n_a). Arms are independent.
    """

    name = "ucb1"

    def __init__(self, c: float = math.sqrt(2.0)) -> None:
        check(isinstance(c, (int, float)) and c >= 0, "c", c, "a number >= 0")
        self.c = float(c)

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """Deterministic: untried arms first (in index order), then the highest bound."""
        n = pstate.pulls  # (B, K)
        total = n.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1)
        mean = pstate.successes / n.clamp(min=1.0)
        bound = mean + self.c * torch.sqrt(torch.log(total) / n.clamp(min=1.0))
        bound = torch.where(n > 0, bound, torch.inf)
        return bound.argmax(dim=1), pstate
