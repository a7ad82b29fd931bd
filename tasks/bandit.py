"""Shared dynamics of stationary Bernoulli bandits (the families differ only in their prior)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tasks.base import State, StepOut, TaskFamily, check


@dataclass
class BanditLatent:
    """Reward probability of every arm."""

    probs: Tensor  # (B, K)


class StationaryBandit(TaskFamily):
    """K arms with fixed reward probabilities over ``num_trials`` trials; no observation."""

    kind = "decision"

    def __init__(self, num_arms: int = 2, num_trials: int = 100) -> None:
        check(isinstance(num_arms, int) and num_arms >= 2, "num_arms", num_arms, "an int >= 2")
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        self.num_actions = num_arms
        self.num_trials = num_trials
        self.obs_dim = 0
        self.feedback_dim = 1

    @property
    def num_arms(self) -> int:
        """Number of arms (= number of actions)."""
        return self.num_actions

    def reset(
        self, latent: BanditLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> State:
        """Episode start: trial 0 (or the given trial index on a trialwise redraw)."""
        b = latent.probs.shape[0]
        return State(
            t=torch.zeros(b, dtype=torch.long, device=latent.probs.device) if t is None else t
        )

    def observe(self, latent: BanditLatent, state: State) -> Tensor:
        """Bandits show nothing but the trial index: an empty observation."""
        return latent.probs.new_zeros(latent.probs.shape[0], 0)

    def step(
        self, latent: BanditLatent, state: State, action: Tensor, generator: torch.Generator
    ) -> tuple[State, StepOut]:
        """Pull one arm per row: reward ~ Bernoulli(p[action])."""
        probs = latent.probs  # (B, K)
        # One uniform per row whatever the action: common random numbers across policies.
        u = torch.rand(probs.shape[0], generator=generator, device=probs.device)
        p = probs.gather(1, action.long()[:, None])[:, 0]  # (B,)
        reward = (u < p).float()
        out = StepOut(
            reward=reward,
            expected_reward=p,
            optimal_expected_reward=probs.max(dim=1).values,
            feedback=reward[:, None],
        )
        return State(t=state.t + 1), out

    def oracle_action(self, latent: BanditLatent, state: State) -> Tensor:
        """The arm with the highest reward probability."""
        return latent.probs.argmax(dim=1)
