"""The Bayes filter of the restless bandit, acting greedily: Bayes-optimal up to the grid.

The latent is p1 on a grid of ``grid_size`` bin midpoints of [0, 1] (uniform prior weights,
the discretized U(0, 1) of a fresh draw) jointly with the task's block phase (first block
stable or volatile). The hazard schedule given the phase is known from the family's
parameters; the phase itself is marginalized (filtered) with the family's prior over it, so
the filter infers whether it is in a volatile block from the jumps it sees.

Before trial t >= 1: b[phase, p] <- (1 - h_t(phase)) b[phase, p] + h_t(phase) * prior(p) *
sum_p b[phase, p]; after the outcome: b <- b * likelihood, normalized.

As in the stationary dependent bandit, a p1-success has probability p1 whichever arm is
pulled, and the jumps ignore the action: the belief's evolution does not depend on the
action, so greedy on E[p1] is Bayes-optimal (ties E[p1] = 1/2 go to arm index 0). The filter
uses the training prior's schedule; on the out-of-distribution priors it is the ideal
observer of the training world, not of the test world.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily, check
from mesalab.tasks.rollout import Policy, StepContext


class RestlessBayesFilter(Policy):
    """Grid filter over (block phase, p1), greedy on the posterior mean of p1."""

    name = "bayes_optimal"

    def __init__(self, grid_size: int = 200) -> None:
        check(isinstance(grid_size, int) and grid_size >= 2, "grid_size", grid_size, ">= 2")
        self.grid_size = grid_size

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Belief (B, 2, G): phase prior times the uniform prior on the p1 grid."""
        dev = generator.device
        # float32 suffices: the belief is renormalized every trial
        self.grid = (torch.arange(self.grid_size, device=dev) + 0.5) / self.grid_size  # (G,)
        phase = torch.arange(2, device=dev)
        volatile = family.block_types(phase)  # (2, T): schedule of each phase
        self.hazard = family.hazards(volatile).float()  # (2, T)
        prior = torch.tensor(family.phase_prior(), device=dev)
        belief = repeat(prior, "two -> two g", g=self.grid_size) / self.grid_size  # (2, G)
        return repeat(belief, "two g -> b two g", b=batch_size).clone()  # (B, 2, G)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Let p1 jump with the block's hazard, then pick the arm with higher E[p]."""
        t = ctx.state.t.clamp(max=self.hazard.shape[1] - 1)
        h = rearrange(self.hazard[:, t], "two b -> b two 1")  # (B, 2, 1)
        mass = pstate.sum(dim=2, keepdim=True)  # (B, 2, 1)
        # At t = 0 the belief is the prior, which a jump leaves unchanged: no special case.
        belief = (1.0 - h) * pstate + h * mass / self.grid_size
        mean_p1 = (belief.sum(dim=1) * self.grid).sum(dim=1)  # (B,)
        return (mean_p1 < 0.5).long(), belief

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Weight by the likelihood of a p1-success or p1-failure, then normalize."""
        p1_success = torch.where(action == 0, out.reward, 1.0 - out.reward).float()[:, None]
        lik = p1_success * self.grid + (1.0 - p1_success) * (1.0 - self.grid)  # (B, G)
        post = pstate * lik[:, None, :]
        return post / post.sum(dim=(1, 2), keepdim=True)
