"""The floor and the ceiling: a random policy and the oracle that knows the latent."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesalab.tasks.base import TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


class RandomPolicy(Policy):
    """Uniformly random discrete action every trial."""

    name = "random"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Remember the number of actions; nothing else."""
        return family.num_actions

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Draw an arm uniformly."""
        b = ctx.obs.shape[0]
        return torch.randint(0, pstate, (b,), generator=generator, device=generator.device), pstate


class OraclePolicy(Policy):
    """Acts as an agent that knows the task's parameters would."""

    name = "oracle"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """The oracle needs the family to read the latent."""
        return family

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """The family's oracle action for the current state."""
        return pstate.oracle_action(ctx.latent, ctx.state), pstate
