"""Block-wise Rescorla-Wagner fits: synthetic agents with known rates, the Bayes filter's split."""

from __future__ import annotations

import pytest
import torch

from mesalab.analysis.volatility import BlockRescorlaWagner, analyze, fit_block_rates
from mesalab.tasks import make_family
from mesalab.tasks.references import fit_rescorla_wagner
from mesalab.tasks.references.rescorla_wagner import RescorlaWagner
from tests.analysis.conftest import reference_trajectories

N = 150


def fit(traj):
    return fit_block_rates(traj.actions, traj.rewards, traj.info["volatile"])


def test_recovers_known_different_rates_per_block() -> None:
    agent = BlockRescorlaWagner(alpha_stable=0.1, alpha_volatile=0.6, beta=8.0)
    _, trajs = reference_trajectories("restless_bandit", N, seed=5, policies={"rw": agent})
    res = fit(trajs["rw"])
    for key, truth in (("alpha_stable", 0.1), ("alpha_volatile", 0.6), ("beta_stable", 8.0)):
        lo, hi = res[f"{key}_ci95"]
        assert lo < truth < hi, key
        assert res[key] == pytest.approx(truth, rel=0.15), key
    assert res["alpha_ratio_ci95"][0] > 3
    # the block model explains these choices far better than one learning rate
    assert res["log_likelihood"] > res["log_likelihood_single"] + 100


def test_one_learning_rate_is_found_equal_in_both_blocks() -> None:
    _, trajs = reference_trajectories(
        "restless_bandit", N, seed=6, policies={"rw": RescorlaWagner(alpha=0.3, beta=8.0)}
    )
    t = trajs["rw"]
    res = fit(t)
    lo, hi = res["alpha_ratio_ci95"]
    assert lo < 1 < hi and res["identified"]
    for key in ("alpha_stable", "alpha_volatile"):
        assert res[f"{key}_ci95"][0] < 0.3 < res[f"{key}_ci95"][1]
    # the single-rate model inside the fit is the one of mesalab.tasks.references' fit
    alpha, beta = fit_rescorla_wagner(t.actions, t.rewards, 2)
    assert res["alpha_single"] == pytest.approx(float(alpha), abs=2e-3)
    assert res["beta_single"] == pytest.approx(float(beta), rel=1e-2)


def test_bayes_filter_learns_faster_in_volatile_blocks(tmp_path) -> None:
    refs = make_family("restless_bandit").references()
    subset = {k: refs[k] for k in ("bayes_optimal", "random")}
    family, trajs = reference_trajectories("restless_bandit", N, seed=7, policies=subset)
    policies = ("learner", "bayes_optimal", "random")
    out = analyze(trajs, family, out_dir=tmp_path, outer_lr=7e-4, policies=policies)
    bayes = out["policies"]["bayes_optimal"]
    assert bayes["alpha_ratio_ci95"][0] > 1.0 and bayes["identified"]
    assert set(out["policies"]) == {"bayes_optimal", "random"}  # no learner here
    assert out["outer_lr"] == 7e-4 and (tmp_path / "volatility_rates.png").exists()
    # coin flips: no values explain them, the learning rates are flagged as unidentified
    assert not out["policies"]["random"]["identified"]


def test_needs_both_kinds_of_block() -> None:
    a = torch.zeros(3, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="volatile"):
        fit_block_rates(a, a.float(), torch.zeros_like(a))
