"""Two arms, p2 = 1 - p1, where p1 jumps in stable and volatile blocks (Behrens et al. 2007).

The episode is cut into blocks of ``block_length`` trials that alternate between stable and
volatile; each task's first block is stable or volatile (``first_block``: "stable",
"volatile", or "random" = a fair coin per task). Before trial t >= 1, p1 jumps to a fresh
U(0, 1) value with probability ``hazard_stable`` or ``hazard_volatile`` according to the
block of trial t. The best learning rate therefore differs between blocks: long memory in
stable blocks, short memory in volatile ones. Defaults for 100 trials: blocks of 25,
hazard 0 (stable) and 0.1 (volatile, about 2.5 jumps per volatile block).

The whole schedule is drawn with the task (the latent holds p1 and the block type for every
trial, (B, T)), so environment randomness per step is one uniform per row whatever the
action, and a trialwise redraw simply reads the new schedule at the current trial.
``StepOut.info`` exposes, per trial, ``volatile`` (0 stable / 1 volatile, long) and ``p1``.

Priors (the first trains, the others are named out-of-distribution tests)::

    train          the schedule above
    stable_only    every block stable (hazard_stable throughout)
    volatile_only  every block volatile (hazard_volatile throughout)
    fast           volatile blocks jump at twice hazard_volatile (capped at 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import Policy, State, StepOut, TaskFamily, check
from mesalab.tasks.references import bandit_references
from mesalab.tasks.references.bayes_filter import RestlessBayesFilter

FIRST_BLOCKS = ("stable", "volatile", "random")


@dataclass
class RestlessLatent:
    """The per-trial schedule of one task."""

    p1: Tensor  # (B, T) reward probability of arm 0 at every trial
    volatile: Tensor  # (B, T) long, 1 where the trial lies in a volatile block


def _check_probability(field: str, value: object) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    check(ok and 0.0 <= value <= 1.0, field, value, "a probability in [0, 1]")


class RestlessBandit(TaskFamily):
    """Anti-correlated arms whose probabilities jump, at a rate that changes by block."""

    name = "restless_bandit"
    analysis = "mesalab.analysis.volatility.VolatilityAnalysis"
    kind = "decision"
    priors = ("train", "stable_only", "volatile_only", "fast")
    feedback_bounds = (0.0, 1.0)  # the Bernoulli reward
    action_free_dynamics = True  # the jump schedule is drawn with the task

    def __init__(
        self,
        num_trials: int = 100,
        block_length: int = 25,
        hazard_stable: float = 0.0,
        hazard_volatile: float = 0.1,
        first_block: str = "random",
        num_arms: int = 2,
    ) -> None:
        check(num_arms == 2, "num_arms", num_arms, "2 (the restless bandit has two arms)")
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        check(
            isinstance(block_length, int) and block_length >= 1,
            "block_length",
            block_length,
            "an int >= 1",
        )
        _check_probability("hazard_stable", hazard_stable)
        _check_probability("hazard_volatile", hazard_volatile)
        check(first_block in FIRST_BLOCKS, "first_block", first_block, f"one of {FIRST_BLOCKS}")
        self.num_trials, self.num_actions = num_trials, 2
        self.obs_dim, self.feedback_dim = 0, 1
        self.block_length = block_length
        self.hazard_stable, self.hazard_volatile = float(hazard_stable), float(hazard_volatile)
        self.first_block = first_block

    # --- the schedule ----------------------------------------------------------------------
    def block_types(self, phase: Tensor) -> Tensor:
        """Block type of every trial, (B, T) long, given each task's first block (B,)."""
        block = torch.arange(self.num_trials, device=phase.device) // self.block_length
        return (block[None, :] + phase[:, None]) % 2  # (B, T)

    def phase_prior(self) -> tuple[float, float]:
        """Training-prior probability that a task's first block is stable / volatile."""
        return {"stable": (1.0, 0.0), "volatile": (0.0, 1.0), "random": (0.5, 0.5)}[
            self.first_block
        ]

    def hazards(self, volatile: Tensor, prior: str = "train") -> Tensor:
        """Jump probability before every trial, same shape as ``volatile``."""
        h_vol = min(1.0, 2 * self.hazard_volatile) if prior == "fast" else self.hazard_volatile
        return torch.where(volatile.bool(), h_vol, self.hazard_stable)

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> RestlessLatent:
        """Draw each task's block phase, jump times and fresh p1 values, (n, T)."""
        self.check_prior(prior)
        dev, t_max = generator.device, self.num_trials
        coin = torch.rand(n, generator=generator, device=dev)
        jump_u = torch.rand(n, t_max, generator=generator, device=dev)
        fresh = torch.rand(n, t_max, generator=generator, device=dev)
        phase = (coin < self.phase_prior()[1]).long()
        volatile = self.block_types(phase)
        if prior == "stable_only":
            volatile = torch.zeros_like(volatile)
        elif prior == "volatile_only":
            volatile = torch.ones_like(volatile)
        jump = jump_u < self.hazards(volatile, prior)
        jump[:, 0] = True  # the first value is a fresh draw
        steps = torch.arange(t_max, device=dev).expand(n, t_max)
        # Index of the latest jump at or before each trial: p1 holds its value until then.
        last = torch.where(jump, steps, torch.zeros_like(steps)).cummax(dim=1).values
        return RestlessLatent(p1=fresh.gather(1, last), volatile=volatile)

    # --- the functional core ----------------------------------------------------------------
    def _at(self, x: Tensor, state: State) -> Tensor:
        """Column ``state.t`` of a (B, T) schedule (clamped to the last trial)."""
        return x.gather(1, state.t.clamp(max=self.num_trials - 1)[:, None])[:, 0]

    def probs(self, latent: RestlessLatent, state: State) -> Tensor:
        """Reward probabilities of both arms at the current trial, (B, 2)."""
        p1 = self._at(latent.p1, state)
        return torch.stack([p1, 1.0 - p1], dim=1)

    def reset(
        self, latent: RestlessLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> State:
        """Episode start: trial 0 (or the given trial index on a trialwise redraw)."""
        b = latent.p1.shape[0]
        start = torch.zeros(b, dtype=torch.long, device=latent.p1.device)
        return State(t=start if t is None else t)

    def observe(self, latent: RestlessLatent, state: State) -> Tensor:
        """Nothing to see but the trial index: an empty observation."""
        return latent.p1.new_zeros(latent.p1.shape[0], 0)

    def step(
        self, latent: RestlessLatent, state: State, action: Tensor, generator: torch.Generator
    ) -> tuple[State, StepOut]:
        """Pull one arm per row: reward ~ Bernoulli(p[action]) at the current trial."""
        probs = self.probs(latent, state)  # (B, 2)
        # One uniform per row whatever the action: common random numbers across policies.
        u = torch.rand(probs.shape[0], generator=generator, device=probs.device)
        p = probs.gather(1, action.long()[:, None])[:, 0]  # (B,)
        reward = (u < p).float()
        out = StepOut(
            reward=reward,
            expected_reward=p,
            optimal_expected_reward=probs.max(dim=1).values,
            feedback=reward[:, None],
            info={"volatile": self._at(latent.volatile, state), "p1": probs[:, 0]},
        )
        return State(t=state.t + 1), out

    def oracle_action(self, latent: RestlessLatent, state: State) -> Tensor:
        """The arm that is better at the current trial."""
        return self.probs(latent, state).argmax(dim=1)

    def references(self) -> dict[str, Policy]:
        """Oracle, random, the classic learners, and the Bayes filter over the jumps."""

        refs = bandit_references()
        refs["bayes_optimal"] = RestlessBayesFilter()
        return refs
