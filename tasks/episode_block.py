"""A block of whole episodes computed ahead for every action: fast one-environment stepping.

A torch step costs microseconds per op whatever the batch, so stepping one environment at a
time through the batched family spends hundreds of microseconds per trial. For a family with
discrete actions whose state never depends on the action (``action_free_dynamics``), the
outcome of action a at trial t depends only on the task, the trial and that trial's random
numbers, and every family draws the same random numbers whatever the action (the
common-random-numbers contract of :mod:`mesalab.tasks.base`). So one batched pass per action,
each started from the same generator state, gives the outcome of *every* action at every
trial of E episodes, with the family's own dynamics; a single environment then steps by
looking up the action it was given. The result is the same as stepping the family with the
actions actually taken (a test replays it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.inputs import build_inputs

#: the most floats a block's tables hold (inputs dominate: A x E x (T + 1) x D)
MAX_BLOCK_FLOATS = 2**21


@dataclass
class EpisodeBlock:
    """Outcomes of every action at every trial of ``num_episodes`` episodes, as numpy tables.

    ``inputs[a, e, t]`` is the learner input before trial t of episode e when the previous
    action was a (at t = 0 every a gives the same start input; t = T is the terminal one).
    ``reward[a, e, t]`` and every ``info[key][a, e, t]`` are what taking a at trial t gives.
    """

    inputs: np.ndarray  # (A, E, T + 1, D) float32
    reward: np.ndarray  # (A, E, T) float64
    info: dict[str, np.ndarray]  # each (A, E, T, ...)

    @property
    def num_episodes(self) -> int:
        """E, the episodes in the block."""
        return self.inputs.shape[1]


def supports_blocks(family: TaskFamily, distribution: TaskDistribution) -> bool:
    """Whether a block gives the family's exact outcomes: discrete actions, action-free state.

    A trialwise distribution redraws the task inside the episode, which the block does not do.
    """
    discrete = family.kind == "decision" and family.action_space == "discrete"
    return discrete and family.action_free_dynamics and not distribution.trialwise


def block_size(family: TaskFamily, limit: int = 256) -> int:
    """Episodes per block: up to ``limit``, fewer when the tables would pass MAX_BLOCK_FLOATS."""
    per_episode = family.num_actions * (family.num_trials + 1) * family.input_dim
    return max(1, min(limit, MAX_BLOCK_FLOATS // per_episode))


def draw_block(
    family: TaskFamily,
    distribution: TaskDistribution,
    num_episodes: int,
    generator: torch.Generator,
) -> EpisodeBlock:
    """Draw ``num_episodes`` tasks and roll each action through all of them from one RNG state."""
    check(
        supports_blocks(family, distribution),
        "family",
        family.name,
        "a family with discrete actions and action_free_dynamics, under a non-trialwise "
        "distribution",
    )
    e, n_act, n_trials = num_episodes, family.num_actions, family.num_trials
    latent = distribution.sample(e, generator)
    start = family.reset(latent, generator)
    rng_state = generator.get_state()
    states, outs = [start], []  # states from the first pass: the same in every pass
    for a in range(n_act):
        generator.set_state(rng_state)  # every pass sees the same random numbers
        action = torch.full((e,), a, dtype=torch.long, device=generator.device)
        state, per_trial = start, []
        for _ in range(n_trials):
            state, out = family.step(latent, state, action, generator)
            per_trial.append(out)
            if a == 0:
                states.append(state)
        outs.append(per_trial)
    # the generator now stands where any single pass would leave it: blocks chain seamlessly

    inputs = []  # per trial t = 0..T: (A, E, D)
    for t, state in enumerate(states):
        # the terminal input reuses the last trial's observation (families index per trial)
        view = dataclasses.replace(state, t=state.t.clamp(max=n_trials - 1))
        obs = family.observe(latent, view)
        if t == 0:
            x = build_inputs(family, obs, None, None, state.t)  # (E, D)
            inputs.append(x.expand(n_act, -1, -1))
            continue
        rows = []
        for a in range(n_act):
            action = torch.full((e,), a, dtype=torch.long, device=generator.device)
            rows.append(build_inputs(family, obs, action, outs[a][t - 1].feedback, state.t))
        inputs.append(torch.stack(rows))
    table = torch.stack(inputs, dim=2).float()  # (A, E, T + 1, D)

    def stack(get) -> np.ndarray:
        x = torch.stack([torch.stack([get(o) for o in per_trial]) for per_trial in outs])
        return rearrange(x, "a t e ... -> a e t ...").cpu().numpy()  # (A, E, T, ...)

    info = {
        "expected_reward": stack(lambda o: o.expected_reward),
        "optimal_expected_reward": stack(lambda o: o.optimal_expected_reward),
    }
    for key in outs[0][0].info:
        info[key] = stack(lambda o, k=key: o.info[k])
    reward = stack(lambda o: o.reward).astype(np.float64)
    return EpisodeBlock(inputs=table.cpu().numpy(), reward=reward, info=info)
