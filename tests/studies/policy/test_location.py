"""Known answers for the location-learning index: each observer scores exactly 0 or 1."""

from __future__ import annotations

import pytest
import torch

from mesalab.studies.policy.location import (
    greedy_vector,
    location_index,
    location_metrics,
    ratio_bootstrap_ci,
    step_vector,
)
from mesalab.tasks import DependentBandit, LinearRegression, MarkovChain, TaskDistribution
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.distributions import stream_generator
from mesalab.tasks.references.discrete_posterior import pool_observer
from mesalab.tasks.rollout import Policy

FAMILIES = [
    ("dependent", lambda: DependentBandit(num_trials=20)),
    ("bernoulli", lambda: BernoulliBandit(num_arms=2, num_trials=20)),
    ("regression", lambda: LinearRegression(dim=3)),
    ("markov", lambda: MarkovChain(num_states=3, num_trials=20)),
]


def setup(make, k: int = 4, n: int = 48):
    family = make()
    dist = TaskDistribution(family, "pool", pool_size=k, seed=1)
    latent = dist.heldout(n, stream_generator(1, "eval"))
    return family, dist, latent


@pytest.mark.parametrize("name,make", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_observer_scores_its_end(name, make) -> None:
    family, dist, latent = setup(make)
    loc = location_metrics(pool_observer(family, dist.pool), family, dist, latent, seed=0)
    assert loc["informative_steps"] > 0.05  # the observers do disagree: the test can fail
    assert loc["index"] == pytest.approx(0.0, abs=1e-9)
    assert loc["index_ci95"][0] <= 0.0 + 1e-9 and loc["index_ci95"][1] >= -1e-9
    assert loc["index_ci95"] == pytest.approx([0.0, 0.0], abs=1e-9)
    loc = location_metrics(family.prior_observer(), family, dist, latent, seed=0)
    assert loc["index"] == pytest.approx(1.0, abs=1e-9)
    assert loc["index_ci95"] == pytest.approx([1.0, 1.0], abs=1e-9)
    assert loc["pool_size"] == 4 and set(loc["observers"]) == {"train_prior", "family_prior"}


class Blend(Policy):
    """Acts as a fixed blend of the two observers: (1 - lam) * training + lam * family."""

    name = "blend"

    def __init__(self, family, pool, lam: float) -> None:
        self.obs = {"a": pool_observer(family, pool), "b": family.prior_observer()}
        self.lam = lam
        self.probs = None

    def reset(self, family, batch_size, generator):
        self.family = family
        return {k: o.reset(family, batch_size, generator) for k, o in self.obs.items()}

    def act(self, pstate, ctx, generator):
        vec = {}
        for k, o in self.obs.items():
            action, pstate[k] = o.act(pstate[k], ctx, generator)
            vec[k] = step_vector(o, pstate[k], ctx, action, self.family)
        mix = (1 - self.lam) * vec["a"] + self.lam * vec["b"]  # (B, A)
        if self.family.kind == "prediction":
            return mix.float(), pstate
        self.probs = mix
        return torch.multinomial(mix, 1, generator=generator)[:, 0], pstate

    def action_probs(self):
        return self.probs

    def update(self, pstate, ctx, action, out):
        return {k: o.update(pstate[k], ctx, action, out) for k, o in self.obs.items()}


@pytest.mark.parametrize("name,make", FAMILIES[2:], ids=[f[0] for f in FAMILIES[2:]])
def test_a_blended_prediction_scores_its_weight(name, make) -> None:
    family, dist, latent = setup(make)
    loc = location_metrics(Blend(family, dist.pool, 0.7), family, dist, latent, seed=0)
    assert loc["index"] == pytest.approx(0.7, abs=1e-4)  # float32 predictions: to rounding
    assert loc["on_line"] == pytest.approx(1.0, abs=1e-4)  # a blend lies on the line
    lo, hi = loc["index_ci95"]
    assert lo <= 0.7 + 1e-4 and hi >= 0.7 - 1e-4


def test_a_sampling_policy_is_judged_by_its_preferred_arm() -> None:
    """Sampling 30:70 between the observers' choices counts as preferring the 70 side."""
    family, dist, latent = setup(FAMILIES[0][1])
    loc = location_metrics(Blend(family, dist.pool, 0.3), family, dist, latent, seed=0)
    assert loc["index"] == pytest.approx(0.0, abs=1e-9)
    loc = location_metrics(Blend(family, dist.pool, 1.0), family, dist, latent, seed=0)
    assert loc["index"] == pytest.approx(1.0, abs=1e-9)
    # 70:30 towards the family observer: its arm wins except where the family observer is
    # indifferent (then the blend leans to the training-prior observer's arm, scoring 0)
    loc = location_metrics(Blend(family, dist.pool, 0.7), family, dist, latent, seed=0)
    assert 0.5 < loc["index"] < 1.0


def test_no_pool_no_index() -> None:
    family = DependentBandit(num_trials=10)
    latent = family.sample_latent(8, torch.Generator())
    for mode in ("related", "trialwise"):
        dist = TaskDistribution(family, mode)
        assert location_metrics(family.prior_observer(), family, dist, latent, seed=0) is None


def test_no_index_for_drifting_chains() -> None:
    family = MarkovChain(num_states=2, num_trials=6, hazard=0.1)
    dist = TaskDistribution(family, "pool", pool_size=3, seed=0)
    latent = dist.heldout(4, stream_generator(0, "eval"))
    assert location_metrics(family.prior_observer(), family, dist, latent, seed=0) is None


def test_greedy_vector_splits_ties() -> None:
    v = greedy_vector(torch.tensor([[0.5, 0.5], [0.7, 0.2], [0.1, 0.3]], dtype=torch.float64))
    assert v.tolist() == [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("num_trials", [1, 20, 50, 100])
def test_symmetric_prior_is_a_tie_at_the_first_trial(num_trials: int) -> None:
    # float32 quadrature nodes leave the two posterior means ~1e-8 apart: still a tie
    family = DependentBandit(num_trials=num_trials)
    obs = family.prior_observer()
    state = obs.reset(family, 1, torch.Generator().manual_seed(0))
    mean = family.mixture_mean(obs.candidates, state.weights, None)  # (1, 2)
    assert greedy_vector(mean.double()).tolist() == [[0.5, 0.5]]


def test_index_ignores_steps_where_observers_agree() -> None:
    a = torch.zeros(3, 4, 1, dtype=torch.float64)
    b = a.clone()
    b[:, 2] = 2.0  # the observers disagree at one step only
    v = torch.full_like(a, 123.0)  # anything where they agree
    v[:, 2] = 0.5  # a quarter of the way from a to b
    out = location_index({"actor": v, "train_prior": a, "family_prior": b})
    assert out["index"] == pytest.approx(0.25)
    assert out["informative_steps"] == pytest.approx(0.25)
    assert out["index_by_trial"][2] == pytest.approx(0.25) and out["index_by_trial"][0] is None
    # where the observers agree the actor is far off their line: only its step-2 departure
    # (0.5^2 per task) lies along it, out of 0.5^2 + 3 * 123^2
    assert out["on_line"] == pytest.approx(0.5**2 / (0.5**2 + 3 * 123**2))
    same = location_index({"actor": v, "train_prior": a, "family_prior": a})
    assert same["index"] is None and same["index_ci95"] is None


def test_ratio_bootstrap_interval() -> None:
    den = torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.1
    assert ratio_bootstrap_ci(0.3 * den, den) == pytest.approx([0.3, 0.3])
    num = den * torch.where(torch.arange(200) % 2 == 0, 0.0, 1.0).double()
    lo, hi = ratio_bootstrap_ci(num, den)
    point = float(num.sum() / den.sum())
    assert lo < point < hi and hi - lo < 0.3
