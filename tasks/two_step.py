"""The two-step task (Daw et al. 2011) as used by Wang et al. (2018, Nature Neuroscience).

One trial = one step. The first-stage action a in {0, 1} leads to second-stage state a with
the *common* probability (0.8) and to the other state otherwise (the *rare* transition). The
second stage is automatic: in Wang et al.'s version the reward probability belongs to the
second-stage *state* (0.9 in the good one, 0.1 in the other), so a second-stage choice would
not change anything and the trial is collapsed into one decision. After every trial the
good state swaps with probability 0.025.

The task is the whole schedule of the good state, drawn with the latent (a fair coin for the
first trial, then the swaps), as the restless bandit draws its schedule. So ``single`` means one
fixed schedule (nothing left to learn in-context, as for every family), ``pool(K)`` means K
schedules, and a ``trialwise`` redraw reads a fresh task's good state at the current trial (a
fair coin). Drawing only the first good state would leave two tasks per prior, so that
``single`` would still need in-context tracking of the swaps and ``pool(K)`` could not hold
more than two tasks. The per-step randomness is two uniforms per row whatever the action.

What the learner sees: the observation is empty (the first stage looks the same every trial);
the feedback, shown at the next step by ``build_inputs``, is ``[reward, reached A, reached B]``
(feedback_dim = 3), so both the reward and the second-stage state of the last trial are inputs.
``StepOut.info`` carries ``common`` (bool: the transition was the common one), ``state2`` (the
reached state) and ``good_state`` (the good state during the trial) for the stay analysis.

Priors (the constants live in the latent as (B,) tensors so that a reference can read the
structure an ideal observer knows; only the schedule ``good`` is the task itself):
``train`` the constructor's values; ``volatile`` swap 0.1; ``stable`` no swaps;
``weak_transitions`` common 0.6; ``weak_rewards`` reward probabilities 0.7 / 0.3.
The low reward probability is always 1 - the high one: then what a trial reveals about which
state is good does not depend on the action, and greedy acting on the exact posterior is the
Bayes-optimal policy (see ``mesalab.tasks.references.two_step_refs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import State, StepOut, TaskFamily, check
from mesalab.tasks.references.two_step_refs import (
    BayesTwoStepPolicy,
    ModelBasedPolicy,
    ModelFreePolicy,
)


@dataclass
class TwoStepLatent:
    """The good second-stage state at every trial, plus the prior's constants."""

    good: Tensor  # (B, T) long, 0 or 1
    p_common: Tensor  # (B,) probability of the common transition
    p_reward: Tensor  # (B,) reward probability in the good state (1 - it in the other)
    p_swap: Tensor  # (B,) probability that the good state swaps after a trial


@dataclass
class TwoStepState(State):
    """Trial index and the current good second-stage state."""

    good: Tensor  # (B,) long


class TwoStep(TaskFamily):
    """Two first-stage actions, common/rare transitions, drifting second-stage rewards."""

    name = "two_step"
    analysis = "mesalab.analysis.two_step.TwoStepAnalysis"
    kind = "decision"
    priors = ("train", "volatile", "stable", "weak_transitions", "weak_rewards")
    feedback_bounds = (0.0, 1.0)  # [reward, reached A, reached B]
    action_free_dynamics = True  # the good-state schedule is drawn with the task
    ideal_reference = "bayes_optimal"

    def __init__(
        self,
        num_trials: int = 100,
        common_prob: float = 0.8,
        reward_prob: float = 0.9,
        swap_prob: float = 0.025,
    ) -> None:
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        check(0.5 < common_prob <= 1.0, "common_prob", common_prob, "in (0.5, 1]")
        check(0.5 < reward_prob <= 1.0, "reward_prob", reward_prob, "in (0.5, 1]")
        check(0.0 <= swap_prob <= 0.5, "swap_prob", swap_prob, "in [0, 0.5]")
        self.num_trials = num_trials
        self.num_actions = 2
        self.obs_dim = 0
        self.feedback_dim = 3
        self.common_prob, self.reward_prob, self.swap_prob = common_prob, reward_prob, swap_prob

    def prior_constants(self, prior: str) -> tuple[float, float, float]:
        """(common, reward, swap) probabilities of the named prior."""
        self.check_prior(prior)
        common, reward, swap = self.common_prob, self.reward_prob, self.swap_prob
        if prior == "volatile":
            swap = 0.1
        elif prior == "stable":
            swap = 0.0
        elif prior == "weak_transitions":
            common = 0.6
        elif prior == "weak_rewards":
            reward = 0.7
        return common, reward, swap

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> TwoStepLatent:
        """A fair coin for the first good state, then a swap after each trial w.p. p_swap."""
        common, reward, swap = self.prior_constants(prior)
        dev = self.device_of(generator)
        good0 = torch.randint(0, 2, (n, 1), generator=generator, device=dev)
        swaps = torch.rand(n, self.num_trials - 1, generator=generator, device=dev) < swap
        flips = torch.cat([torch.zeros_like(good0), swaps.long().cumsum(dim=1)], dim=1)
        good = (good0 + flips) % 2  # (n, T)
        full = lambda v: torch.full((n,), v, device=dev)
        return TwoStepLatent(
            good=good, p_common=full(common), p_reward=full(reward), p_swap=full(swap)
        )

    def num_distinct_tasks(self, prior: str = "train") -> int | None:
        """Two first states times every swap pattern (one pattern when nothing swaps)."""
        swap = self.prior_constants(prior)[2]
        return 2 if swap == 0.0 else 2**self.num_trials

    def _good_at(self, latent: TwoStepLatent, t: Tensor) -> Tensor:
        """The good state at trial ``t`` (clamped to the last trial), (B,) long."""
        return latent.good.gather(1, t.clamp(max=self.num_trials - 1)[:, None])[:, 0]

    def reset(
        self, latent: TwoStepLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> TwoStepState:
        """Episode start (or a trialwise redraw that keeps the trial index)."""
        if t is None:
            t = torch.zeros_like(latent.good[:, 0])
        return TwoStepState(t=t, good=self._good_at(latent, t))

    def observe(self, latent: TwoStepLatent, state: TwoStepState) -> Tensor:
        """The first stage looks the same every trial: an empty observation."""
        return latent.p_common.new_zeros(latent.p_common.shape[0], 0)

    def expected_rewards(self, latent: TwoStepLatent, state: TwoStepState) -> Tensor:
        """Expected reward of each first-stage action, (B, 2)."""
        p_good = latent.p_common * latent.p_reward + (1 - latent.p_common) * (1 - latent.p_reward)
        leads_to_good = torch.arange(2, device=state.good.device)[None, :] == state.good[:, None]
        return torch.where(leads_to_good, p_good[:, None], 1.0 - p_good[:, None])

    def step(
        self, latent: TwoStepLatent, state: TwoStepState, action: Tensor, generator: torch.Generator
    ) -> tuple[TwoStepState, StepOut]:
        """Transition, reward in the reached state, then the next trial's good state."""
        # reshape, not einops: runs every trial, where einops' per-call work showed in an A/B
        a = action.long().reshape(-1)  # (B,)
        b = a.shape[0]
        # Two uniforms per row whatever the action: transition, reward.
        u = torch.rand(b, 2, generator=generator, device=a.device)
        common = u[:, 0] < latent.p_common
        reached = torch.where(common, a, 1 - a)
        p = torch.where(reached == state.good, latent.p_reward, 1.0 - latent.p_reward)
        reward = (u[:, 1] < p).float()
        values = self.expected_rewards(latent, state)  # (B, 2)
        feedback = torch.cat(
            [reward[:, None], torch.nn.functional.one_hot(reached, 2).float()], dim=1
        )  # (B, 3)
        out = StepOut(
            reward=reward,
            expected_reward=values.gather(1, a[:, None])[:, 0],
            optimal_expected_reward=values.max(dim=1).values,
            feedback=feedback,
            info={"common": common, "state2": reached, "good_state": state.good.clone()},
        )
        t_next = state.t + 1
        return TwoStepState(t=t_next, good=self._good_at(latent, t_next)), out

    def oracle_action(self, latent: TwoStepLatent, state: TwoStepState) -> Tensor:
        """The action whose common transition leads to the current good state."""
        return state.good.clone()

    def references(self) -> dict:
        """Oracle, random, model-free and model-based TD learners, the Bayes-optimal agent."""

        refs = super().references()
        refs.update(
            model_free=ModelFreePolicy(),
            model_based=ModelBasedPolicy(),
            bayes_optimal=BayesTwoStepPolicy(),
        )
        return refs
