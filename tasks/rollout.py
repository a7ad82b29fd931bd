"""The one rollout loop: any batched policy (reference or learner) on any family.

Randomness is split in two generators: the environment's (task redraws, reward and
observation noise) and the policy's (its own sampling). Seeding the environment generator
identically for two policies gives both the same tasks and the same environment noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mesalab.tasks.base import Policy, StepContext, TaskFamily
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.inputs import build_inputs


@dataclass
class Trajectory:
    """A batch of episodes, every field (B, T, ...)."""

    inputs: Tensor  # (B, T, D)
    actions: Tensor  # (B, T) or (B, T, A)
    rewards: Tensor  # (B, T)
    expected_rewards: Tensor  # (B, T)
    optimal_expected_rewards: Tensor  # (B, T)
    oracle_actions: Tensor  # (B, T) or (B, T, A)
    feedback: Tensor  # (B, T, F)
    info: dict[str, Tensor] = field(default_factory=dict)

    @property
    def regret(self) -> Tensor:
        """Per-trial expected regret against the oracle, (B, T)."""
        return self.optimal_expected_rewards - self.expected_rewards


def rollout(
    family: TaskFamily,
    latent: Any,
    policy: Policy,
    env_generator: torch.Generator,
    policy_generator: torch.Generator,
    distribution: TaskDistribution | None = None,
) -> Trajectory:
    """Run ``policy`` for one episode of ``family.num_trials`` trials on every task of ``latent``.

    With a ``trialwise`` distribution the task is redrawn from it before every trial after the
    first (the redraw uses the environment generator, so it is the same for every policy).
    """
    redraw = distribution is not None and distribution.trialwise
    state = family.reset(latent, env_generator)
    b = state.t.shape[0]
    pstate = policy.reset(family, b, policy_generator)
    prev_action: Tensor | None = None
    prev_feedback: Tensor | None = None
    rec: dict[str, list[Tensor]] = {k: [] for k in Trajectory.__dataclass_fields__ if k != "info"}
    infos: dict[str, list[Tensor]] = {}
    for step in range(family.num_trials):
        if redraw and step > 0:
            latent = distribution.sample(b, env_generator)
            state = family.reset(latent, env_generator, t=state.t)
        obs = family.observe(latent, state)
        inputs = build_inputs(family, obs, prev_action, prev_feedback, state.t)
        ctx = StepContext(obs=obs, inputs=inputs, latent=latent, state=state)
        oracle = family.oracle_action(latent, state)
        action, pstate = policy.act(pstate, ctx, policy_generator)
        new_state, out = family.step(latent, state, action, env_generator)
        pstate = policy.update(pstate, ctx, action, out)
        rec["inputs"].append(inputs)
        rec["actions"].append(action)
        rec["rewards"].append(out.reward)
        rec["expected_rewards"].append(out.expected_reward)
        rec["optimal_expected_rewards"].append(out.optimal_expected_reward)
        rec["oracle_actions"].append(oracle)
        rec["feedback"].append(out.feedback)
        for k, v in out.info.items():
            infos.setdefault(k, []).append(v)
        prev_action, prev_feedback, state = action, out.feedback, new_state
    stacked = {k: torch.stack(v, dim=1) for k, v in rec.items()}
    return Trajectory(**stacked, info={k: torch.stack(v, dim=1) for k, v in infos.items()})
