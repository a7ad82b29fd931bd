"""Two-step stay analysis: hand-made counts, exact logistic fits, the references' known answers."""

from __future__ import annotations

import pytest
import torch

from mesalab.analysis.two_step import (
    BARS,
    analyze,
    design,
    fit_logistic,
    stay_analysis,
    stay_counts,
)
from mesalab.tasks.rollout import Trajectory
from tests.analysis.conftest import reference_trajectories


@pytest.fixture(scope="module")
def refs() -> dict[str, Trajectory]:
    return reference_trajectories("two_step", 400, seed=3)[1]


def test_stay_counts_by_hand() -> None:
    # one episode of 4 trials: actions 0,0,1,1; rewards 1,0,1,-; common T,F,T,-; good state 0
    traj = Trajectory(
        inputs=torch.zeros(1, 4, 1),
        actions=torch.tensor([[0, 0, 1, 1]]),
        rewards=torch.tensor([[1.0, 0.0, 1.0, 0.0]]),
        expected_rewards=torch.zeros(1, 4),
        optimal_expected_rewards=torch.zeros(1, 4),
        oracle_actions=torch.zeros(1, 4, dtype=torch.long),
        feedback=torch.zeros(1, 4, 3),
        info={
            "common": torch.tensor([[True, False, True, True]]),
            "good_state": torch.zeros(1, 4, dtype=torch.long),
        },
    )
    counts = stay_counts(traj)[0]  # (8, 2)
    # pair 1: rewarded, common, correct (a=0=good) -> stay: cell 4 + 2 + 1 = 7
    # pair 2: unrewarded, rare, correct -> switch: cell 1
    # pair 3: rewarded, common, incorrect (a=1) -> stay: cell 6
    expected = torch.zeros(8, 2, dtype=torch.float64)
    expected[7] = torch.tensor([1.0, 1.0])
    expected[1] = torch.tensor([1.0, 0.0])
    expected[6] = torch.tensor([1.0, 1.0])
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("corrected", [False, True])
def test_fit_logistic_recovers_known_coefficients(corrected: bool) -> None:
    x = design(corrected)
    beta = torch.tensor([0.3, 0.8, -0.2, 1.1, 0.5, -0.4][: x.shape[1]], dtype=torch.float64)
    trials = torch.full((1, 8), 1e6, dtype=torch.float64)
    stays = trials * torch.sigmoid(x @ beta)  # expected counts: the MLE is beta itself
    fitted = fit_logistic(trials, stays, x, l2=1e-9)[0]
    assert torch.allclose(fitted, beta, atol=1e-6)


def test_fit_stays_finite_when_a_cell_is_deterministic() -> None:
    trials = torch.full((1, 8), 100.0, dtype=torch.float64)
    stays = trials.clone()  # always stays: separation, the MLE is at infinity
    beta = fit_logistic(trials, stays, design(False))[0]
    assert torch.isfinite(beta).all() and beta[0] > 3


def test_model_based_agent_has_a_positive_index(refs) -> None:
    res = stay_analysis(refs["model_based"])
    assert res["model_based_index_ci95"][0] > 0.5
    assert res["model_based_index_corrected_ci95"][0] > 0.3
    # its stays: rewarded-common and unrewarded-rare high, the other two low
    stay = res["stay"]
    assert min(stay["rewarded_common"]["p"], stay["unrewarded_rare"]["p"]) > 0.8
    assert max(stay["rewarded_rare"]["p"], stay["unrewarded_common"]["p"]) < 0.5


def test_model_free_agent_spurious_raw_index_vanishes_when_corrected(refs) -> None:
    res = stay_analysis(refs["model_free"])
    # Akam et al. 2015: a model-free agent loads on the raw interaction ...
    assert res["model_based_index_ci95"][0] > 0.2
    # ... but not once the correct-choice terms absorb it; its reward effect stays
    lo, hi = res["model_based_index_corrected_ci95"]
    assert lo < 0 < hi
    assert res["model_free_index_ci95"][0] > 0.5


def test_random_agent_stays_half_the_time_everywhere(refs) -> None:
    res = stay_analysis(refs["random"])
    for name, _, _ in BARS:
        lo, hi = res["stay"][name]["ci95"]
        assert lo < 0.5 < hi
    lo, hi = res["model_based_index_ci95"]
    assert lo < 0 < hi


def test_bayes_optimal_is_more_model_based_than_the_td_agent(refs) -> None:
    bayes, mb = stay_analysis(refs["bayes_optimal"]), stay_analysis(refs["model_based"])
    assert bayes["model_based_index_corrected_ci95"][0] > mb["model_based_index_corrected_ci95"][1]


def test_analyze_writes_the_stay_figure(refs, tmp_path) -> None:
    out = analyze(refs, family=None, out_dir=tmp_path)
    assert out["figures"] == ["two_step_stay.png"]
    assert (tmp_path / "two_step_stay.png").stat().st_size > 5000
    assert {r["policy"] for r in out["table"]} == {"model_free", "model_based", "bayes_optimal"}


def test_wrong_family_is_refused() -> None:
    _, trajs = reference_trajectories("harlow", 4)
    with pytest.raises(ValueError, match="trajectory.info"):
        stay_counts(trajs["random"])
