"""The one-shot ideal observer of Harlow's task."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


@dataclass
class OneShotMemory:
    """The object picked on the first trial and whether it was rewarded."""

    picked: Tensor  # (B, D)
    rewarded: Tensor  # (B,) bool
    seen: Tensor  # (B,) bool: the first trial is over


def _split(obs: Tensor) -> tuple[Tensor, Tensor]:
    """Left and right objects from the observation, each (B, D)."""
    d = obs.shape[1] // 2
    return obs[:, :d], obs[:, d:]


class OneShotPolicy(Policy):
    """Random on trial 1; afterwards always the rewarded object (one trial identifies it).

    With one object always rewarded, the first outcome tells which one it is: the Bayes-optimal
    policy, 0.5 expected reward on the first trial and 1 on every later one. The remembered
    object is found again by its nearest match, so it also works with noisy objects.
    """

    name = "one_shot"

    def reset(
        self, family: TaskFamily, batch_size: int, generator: torch.Generator
    ) -> OneShotMemory:
        """Nothing seen yet."""
        dev = generator.device
        dim = family.obs_dim // 2
        false = torch.zeros(batch_size, dtype=torch.bool, device=dev)
        return OneShotMemory(
            picked=torch.zeros(batch_size, dim, device=dev), rewarded=false, seen=false.clone()
        )

    def act(
        self, pstate: OneShotMemory, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, OneShotMemory]:
        """Pick the remembered object if it was rewarded, the other one if not."""
        left, right = _split(ctx.obs.float())
        coin = (torch.rand(left.shape[0], generator=generator, device=left.device) < 0.5).long()
        picked_is_right = (right - pstate.picked).norm(dim=1) < (left - pstate.picked).norm(dim=1)
        side = torch.where(pstate.rewarded, picked_is_right.long(), 1 - picked_is_right.long())
        return torch.where(pstate.seen, side, coin), pstate

    def update(
        self, pstate: OneShotMemory, ctx: StepContext, action: Tensor, out: StepOut
    ) -> OneShotMemory:
        """Remember the first trial's pick and outcome; later trials teach nothing new."""
        left, right = _split(ctx.obs.float())
        chosen = torch.where(action.long()[:, None] == 0, left, right)  # (B, D)
        first = ~pstate.seen
        return OneShotMemory(
            picked=torch.where(first[:, None], chosen, pstate.picked),
            rewarded=torch.where(first, out.reward > 0, pstate.rewarded),
            seen=torch.ones_like(pstate.seen),
        )
