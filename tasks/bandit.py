"""Shared dynamics of stationary Bernoulli bandits (the families differ only in their prior).

Also the small interval helpers the bandit priors use: a training range of reward
probabilities, and its complement in [0, 1] as a never-trained test range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mesalab.tasks.base import State, StepOut, TaskFamily, check

#: reward probabilities are clamped this far from 0 and 1 inside log-likelihoods
LOG_FLOOR = 1e-12

Intervals = list[tuple[float, float]]


def check_unit_range(p_low: object, p_high: object) -> None:
    """A training range of probabilities: 0 <= p_low < p_high <= 1."""
    for field, value in (("p_low", p_low), ("p_high", p_high)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        check(ok and 0.0 <= value <= 1.0, field, value, "a probability in [0, 1]")
    check(p_low < p_high, "p_high", p_high, f"greater than p_low={p_low!r}")


def merge_intervals(intervals: Intervals) -> Intervals:
    """Sorted union of closed intervals, overlapping ones merged."""
    merged: Intervals = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def complement_intervals(intervals: Intervals) -> Intervals:
    """The parts of [0, 1] not covered by ``intervals`` (zero-length gaps dropped)."""
    gaps: Intervals = []
    start = 0.0
    for lo, hi in merge_intervals(intervals):
        if lo > start:
            gaps.append((start, lo))
        start = max(start, hi)
    if start < 1.0:
        gaps.append((start, 1.0))
    return gaps


def sample_intervals(
    intervals: Intervals, shape: tuple[int, ...], generator: torch.Generator
) -> Tensor:
    """Uniform draws on a union of disjoint intervals (one uniform per value drawn)."""
    lows = torch.tensor([lo for lo, _ in intervals], dtype=torch.float64)
    lengths = torch.tensor([hi - lo for lo, hi in intervals], dtype=torch.float64)
    ends = lengths.cumsum(0)
    # Stretch U(0, total length) over the intervals laid end to end, then map back.
    u = torch.rand(shape, generator=generator, device=generator.device).double() * ends[-1]
    ends, lows, lengths = ends.to(u.device), lows.to(u.device), lengths.to(u.device)
    piece = torch.bucketize(u, ends, right=True).clamp(max=len(intervals) - 1)
    value = lows[piece] + (u - (ends[piece] - lengths[piece]))
    return value.clamp(0.0, 1.0).float()


def gauss_legendre(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of n-point Gauss-Legendre quadrature on [lo, hi] (weights sum to 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return lo + (hi - lo) * (nodes + 1.0) / 2.0, weights / 2.0


@dataclass
class BanditLatent:
    """Reward probability of every arm."""

    probs: Tensor  # (B, K)


class StationaryBandit(TaskFamily):
    """K arms with fixed reward probabilities over ``num_trials`` trials; no observation."""

    kind = "decision"
    feedback_bounds = (0.0, 1.0)  # the Bernoulli reward
    action_free_dynamics = True

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

    # --- discrete-posterior observer ---------------------------------------------------------
    def log_likelihood(
        self, candidates: BanditLatent, state: State, action: Tensor, out: StepOut
    ) -> Tensor:
        """Bernoulli log-likelihood of the reward under each candidate's p of the pulled arm."""
        p = candidates.probs.T[action.long()].double()  # (K, A) -> (B, K)
        p = p.clamp(LOG_FLOOR, 1.0 - LOG_FLOOR)
        r = out.reward.double()[:, None]  # (B, 1)
        return r * p.log() + (1.0 - r) * (1.0 - p).log()

    def mixture_mean(self, candidates: BanditLatent, weights: Tensor, state: State) -> Tensor:
        """Posterior mean reward probability of every arm, (B, A)."""
        return weights.double() @ candidates.probs.double()
