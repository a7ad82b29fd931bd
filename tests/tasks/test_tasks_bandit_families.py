"""The bandit families: their priors, training ranges, and the restless schedule."""

from __future__ import annotations

import math

import pytest
import torch

from mesalab.tasks import TaskDistribution, num_distinct, rollout, stream_generator
from mesalab.tasks.base import RandomPolicy
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.dependent_bandit import DependentBandit
from mesalab.tasks.distributions import latent_rows
from mesalab.tasks.restless_bandit import RestlessBandit

N = 4000


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bernoulli_priors_and_ranges() -> None:
    fam = BernoulliBandit(num_arms=3, p_low=0.25, p_high=0.75)
    p = fam.sample_latent(N, g(), "train").probs
    assert p.shape == (N, 3) and p.min() >= 0.25 and p.max() <= 0.75
    assert num_distinct(fam.sample_latent(64, g(), "train")) == 64
    out = fam.sample_latent(N, g(), "outside").probs
    assert ((out < 0.25) | (out > 0.75)).all() and out.min() >= 0 and out.max() <= 1
    assert (out < 0.25).float().mean() == pytest.approx(0.5, abs=0.03)  # both gaps, equal size
    close = fam.sample_latent(N, g(), "close").probs
    assert (close.max(1).values - close.min(1).values <= 0.1 + 1e-6).all()
    assert close.min() >= 0 and close.max() <= 1
    low, high = fam.sample_latent(N, g(), "low").probs, fam.sample_latent(N, g(), "high").probs
    assert low.max() <= 0.25 and high.min() >= 0.75
    full = fam.sample_latent(N, g(), "full").probs
    assert full.min() < 0.05 and full.max() > 0.95
    # Arms are independent: correlation near zero.
    assert abs(float(torch.corrcoef(p[:, :2].T)[0, 1])) < 0.06
    assert "outside" not in BernoulliBandit().priors


def test_dependent_range_is_mirrored_and_outside_is_never_trained() -> None:
    fam = DependentBandit(p_low=0.0, p_high=0.4)
    p = fam.sample_latent(N, g(), "train").probs
    assert torch.allclose(p.sum(1), torch.ones(N))
    p1 = p[:, 0]
    assert ((p1 <= 0.4) | (p1 >= 0.6)).all()
    assert (p1 <= 0.4).float().mean() == pytest.approx(0.5, abs=0.03)  # neither arm favoured
    out = fam.sample_latent(N, g(), "outside").probs[:, 0]
    assert ((out > 0.4) & (out < 0.6)).all()
    near = fam.sample_latent(N, g(), "near_chance").probs[:, 0]
    assert ((near >= 0.45) & (near <= 0.55)).all()
    ext = fam.sample_latent(N, g(), "extreme").probs[:, 0]
    assert ((ext <= 0.05) | (ext >= 0.95)).all()
    assert DependentBandit().priors == ("train", "full", "near_chance", "extreme")


@pytest.mark.parametrize("variant,lo", [("easy", 0.1), ("medium", 0.25), ("hard", 0.4)])
def test_dependent_variants(variant: str, lo: float) -> None:
    p1 = DependentBandit(variant=variant).sample_latent(N, g(), "train").probs[:, 0]
    assert torch.allclose(p1.unique(), torch.tensor([lo, 1 - lo]))
    # Single mode on a two-task prior: held-out tasks are always the other task.
    dist = TaskDistribution(DependentBandit(variant=variant), mode="single", seed=0)
    held = dist.heldout(256, stream_generator(0, "eval")).probs[:, 0]
    assert (held != dist.pool.probs[0, 0]).all()


def test_restless_schedule() -> None:
    fam = RestlessBandit(num_trials=100, block_length=25, hazard_volatile=0.2)
    lat = fam.sample_latent(N, g(), "train")
    assert lat.p1.shape == (N, 100) and lat.volatile.shape == (N, 100)
    assert lat.volatile.dtype == torch.long
    # Blocks of 25 alternate, starting stable or volatile by a fair coin.
    first = lat.volatile[:, 0]
    for b in range(4):
        block = lat.volatile[:, 25 * b : 25 * (b + 1)]
        assert (block == ((first + b) % 2)[:, None]).all()
    assert first.float().mean() == pytest.approx(0.5, abs=0.03)
    jump = lat.p1[:, 1:] != lat.p1[:, :-1]  # (N, T - 1): jumped before trials 1..T-1
    vol = lat.volatile[:, 1:].bool()
    assert not jump[~vol].any()  # hazard 0 in stable blocks
    rate, count = jump[vol].float().mean(), int(vol.sum())
    assert abs(float(rate) - 0.2) < 4 * math.sqrt(0.2 * 0.8 / count)
    assert lat.p1.min() >= 0 and lat.p1.max() <= 1
    stable = fam.sample_latent(64, g(), "stable_only")
    assert (stable.volatile == 0).all() and (stable.p1 == stable.p1[:, :1]).all()
    fast = fam.sample_latent(N, g(), "fast")
    fast_jump = (fast.p1[:, 1:] != fast.p1[:, :-1])[fast.volatile[:, 1:].bool()]
    assert float(fast_jump.float().mean()) == pytest.approx(0.4, abs=0.02)
    assert (fam.sample_latent(64, g(), "volatile_only").volatile == 1).all()


@pytest.mark.parametrize("mode", ["related", "trialwise"])
def test_restless_info_exposes_block_and_p1(mode: str) -> None:
    fam = RestlessBandit(num_trials=40, block_length=10)
    dist = TaskDistribution(fam, mode=mode)
    env = stream_generator(0, "train")
    lat = dist.sample(256, env)
    traj = rollout(fam, lat, RandomPolicy(), env, g(), distribution=dist)
    p1, vol = traj.info["p1"], traj.info["volatile"]
    assert p1.shape == (256, 40) and vol.shape == (256, 40) and vol.dtype == torch.long
    assert torch.allclose(traj.optimal_expected_rewards, torch.maximum(p1, 1 - p1))
    chosen = torch.where(traj.actions == 0, p1, 1 - p1)
    assert torch.allclose(traj.expected_rewards, chosen)
    if mode == "related":
        assert torch.equal(p1, lat.p1) and torch.equal(vol, lat.volatile)
    else:
        # A fresh task every trial: p1 changes at every trial of every episode.
        assert (p1[:, 1:] != p1[:, :-1]).all()


@pytest.mark.parametrize(
    "family",
    [BernoulliBandit(num_trials=20), DependentBandit(num_trials=20), RestlessBandit(num_trials=20)],
    ids=lambda f: f.name,
)
def test_trialwise_redraws_every_row_every_trial(family) -> None:
    dist = TaskDistribution(family, mode="trialwise")
    env = stream_generator(0, "train")
    lat = dist.sample(128, env)
    seen = []

    class Recorder(RandomPolicy):
        def act(self, pstate, ctx, generator):
            seen.append(latent_rows(ctx.latent))
            return super().act(pstate, ctx, generator)

    rollout(family, lat, Recorder(), env, g(), distribution=dist)
    rows = torch.stack(seen, dim=1)  # (B, T, F)
    assert (rows[:, 1:] != rows[:, :-1]).any(-1).all()
    assert rows.shape[:2] == (128, 20)
