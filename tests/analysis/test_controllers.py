"""Choice models and the controller analysis: known answers, then recovery of each model."""

from __future__ import annotations

import math

import pytest
import torch

from mesalab.analysis.choice_models import (
    BayesChoice,
    LastK,
    ThompsonChoice,
    WinStayLoseShift,
    target_probs,
    thompson_probs,
)
from mesalab.analysis.controllers import LAPSES, controller_analysis, lapse_loglik
from mesalab.tasks.base import RandomPolicy
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.references.arm_counts import ArmCounts
from mesalab.tasks.references.rescorla_wagner import RescorlaWagner
from mesalab.tasks.rollout import Trajectory, rollout


def _traj(actions: list[list[int]], rewards: list[list[float]]) -> Trajectory:
    """A recorded bandit history (only actions, rewards and inputs matter to the models)."""
    a, r = torch.tensor(actions), torch.tensor(rewards)
    n, t = a.shape
    z = torch.zeros(n, t)
    return Trajectory(torch.zeros(n, t, 6), a, r, z, z, a, r[..., None])


def _family_latent(n: int, arms: int = 2, trials: int = 4) -> tuple[BernoulliBandit, object]:
    fam = BernoulliBandit(arms, trials)
    return fam, fam.sample_latent(n, torch.Generator().manual_seed(0))


def test_thompson_probs_known_answers() -> None:
    # equal counts: a coin; Beta(2, 1) against a uniform: P = int_0^1 2x * x dx = 2/3
    counts = ArmCounts(torch.tensor([[3.0, 3.0], [1.0, 0.0]]), torch.tensor([[2.0, 2.0], [0, 0]]))
    p = thompson_probs(counts)
    assert torch.allclose(p[0], torch.tensor([0.5, 0.5]), atol=1e-6)
    assert torch.allclose(p[1], torch.tensor([2 / 3, 1 / 3]), atol=1e-4)
    # three arms, one clearly best: nearly certain, and rows sum to 1
    three = thompson_probs(ArmCounts(torch.tensor([[40.0, 1, 1]]), torch.tensor([[1.0, 40, 40]])))
    assert three[0, 0] > 0.999 and torch.allclose(three.sum(1), torch.ones(1))


def test_win_stay_lose_shift_and_last_k_targets_by_hand() -> None:
    fam, lat = _family_latent(1)
    traj = _traj([[0, 0, 1, 1]], [[1.0, 0.0, 1.0, 1.0]])
    wsls = target_probs(WinStayLoseShift(), fam, lat, traj)[0]
    assert wsls.tolist() == [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    # window of 2: before t=2 arm 0 has the reward of t=0, arm 1 none; before t=3 the window
    # is t=1 (arm 0, no reward) and t=2 (arm 1, reward)
    last2 = target_probs(LastK(2), fam, lat, traj)[0]
    assert last2.tolist() == [[0.5, 0.5], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    # window of 1: no reward in the window before t=2 shares the choice uniformly
    last1 = target_probs(LastK(1), fam, lat, traj)[0]
    assert last1.tolist() == [[0.5, 0.5], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]


def test_bayes_choice_teacher_forced_on_its_own_rollout_reproduces_it() -> None:
    fam = BernoulliBandit(2, 30)
    lat = fam.sample_latent(64, torch.Generator().manual_seed(1))
    ref = fam.references()[fam.ideal_reference]
    traj = rollout(
        fam, lat, ref, torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)
    )
    d = target_probs(BayesChoice(fam), fam, lat, traj)  # (N, T, K)
    assert torch.equal(d.argmax(-1), traj.actions.long()) and torch.equal(
        d.max(-1).values, torch.ones(64, 30)
    )


def test_lapse_grid_holds_both_ends_and_chance() -> None:
    assert float(LAPSES[0]) == 0.0 and float(LAPSES[-1]) == 1.0
    chosen = torch.tensor([[1.0, 0.0, 1.0]])
    ll = lapse_loglik(chosen, 2)  # (L, 1)
    assert math.isclose(float(ll[-1, 0]), 3 * math.log(0.5), rel_tol=1e-9)  # lapse 1 = chance
    # the maximum-likelihood lapse of "2 of 3 choices on target" is 2/3: 1 - e + e/2 = 2/3
    assert abs(float(LAPSES[ll[:, 0].argmax()]) - 2 / 3) < 0.03


def test_lapse_out_of_range_names_the_field() -> None:
    with pytest.raises(ValueError, match="lapse"):
        WinStayLoseShift(lapse=1.5)


GENERATORS = {
    "bayes_optimal": lambda fam: BayesChoice(fam, lapse=0.1),
    "thompson": lambda fam: ThompsonChoice(lapse=0.05),
    "rescorla_wagner": lambda fam: RescorlaWagner(alpha=0.3, beta=8.0),
    "win_stay_lose_shift": lambda fam: WinStayLoseShift(lapse=0.1),
    "last_k": lambda fam: LastK(10, lapse=0.2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GENERATORS))
def test_data_generated_by_a_model_is_best_explained_by_it(name: str) -> None:
    fam = BernoulliBandit(2, 100)
    lat = fam.sample_latent(300, torch.Generator().manual_seed(1))
    pol = GENERATORS[name](fam)
    traj = rollout(
        fam, lat, pol, torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)
    )
    result = controller_analysis(fam, lat, traj, num_resamples=200)
    assert result["best"] == name, result["ranking"]
    assert result["margin_ci95"][0] > 0 and not result["tied_with_runner_up"]
    if name == "last_k":  # the window and the chosen-arm probability come back
        params = result["models"]["last_k"]["params"]
        assert params["k"] == 10 and abs(params["lapse"] - 0.2) < 0.05


@pytest.mark.slow
def test_a_random_agent_is_explained_by_none() -> None:
    fam = BernoulliBandit(2, 100)
    lat = fam.sample_latent(300, torch.Generator().manual_seed(1))
    gens = torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)
    traj = rollout(fam, lat, RandomPolicy(), *gens)
    result = controller_analysis(fam, lat, traj, num_resamples=200)
    assert result["best"] == "none"
    assert all(abs(m["gain_over_chance"]) < 0.01 for m in result["models"].values())


def test_thompson_probs_with_a_range_prior_match_sampling() -> None:
    # the posterior under a U(0, 0.3) prior is Beta(1 + s, 1 + f) truncated to [0, 0.3]:
    # sample it by rejection and count which arm's draw is the highest
    s, f = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[5.0, 8.0, 3.0]])
    p = thompson_probs(ArmCounts(s, f), p_range=(0.0, 0.3))[0]
    torch.manual_seed(0)
    draws = []
    for a in range(3):
        x = torch.distributions.Beta(1 + s[0, a], 1 + f[0, a]).sample((400_000,))
        draws.append(x[x <= 0.3][:100_000])
    mc = torch.bincount(torch.stack(draws, 1).argmax(1), minlength=3).float() / 100_000
    assert torch.allclose(p, mc, atol=0.006), (p, mc)
    # the range matters: the unrestricted Beta(1, 1) answer differs by far more than that
    full = thompson_probs(ArmCounts(s, f))[0]
    assert (full - p).abs().max() > 0.03
    # range (0, 1) is the Beta(1, 1) model exactly
    assert torch.equal(thompson_probs(ArmCounts(s, f), p_range=(0.0, 1.0))[0], full)


def test_thompson_choice_takes_the_bernoulli_family_range() -> None:
    low = BernoulliBandit(3, 20, p_low=0.0, p_high=0.3)
    lat = low.sample_latent(4, torch.Generator().manual_seed(0))
    traj = _traj([[0, 1, 2, 0]] * 4, [[1.0, 0.0, 0.0, 1.0]] * 4)
    got = target_probs(ThompsonChoice(), low, lat, traj)
    want = target_probs(ThompsonChoice(p_range=(0.0, 0.3)), low, lat, traj)
    unit = target_probs(ThompsonChoice(p_range=(0.0, 1.0)), low, lat, traj)
    assert torch.equal(got, want) and not torch.allclose(got, unit, atol=1e-3)
    with pytest.raises(ValueError, match="p_range"):
        thompson_probs(ArmCounts(torch.zeros(1, 2), torch.zeros(1, 2)), p_range=(0.5, 0.2))
