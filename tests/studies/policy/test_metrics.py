"""Known-answer tests of the post-freeze metrics (mesalab.studies.policy.metrics)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from mesalab.studies.policy import metrics as M
from mesalab.tasks import Policy, StepContext, Trajectory, make_family, stream_generator
from mesalab.tasks.base import OraclePolicy, RandomPolicy
from mesalab.tasks.dependent_bandit import DependentBandit


def hand_trajectory(expected: list[list[float]], optimal: list[list[float]]) -> Trajectory:
    """A trajectory whose only meaningful fields are the expected and optimal rewards."""
    e = torch.tensor(expected)
    b, t = e.shape
    return Trajectory(
        inputs=torch.zeros(b, t, 5),
        actions=torch.zeros(b, t, dtype=torch.long),
        rewards=torch.zeros(b, t),
        expected_rewards=e,
        optimal_expected_rewards=torch.tensor(optimal),
        oracle_actions=torch.zeros(b, t, dtype=torch.long),
        feedback=torch.zeros(b, t, 1),
    )


@pytest.mark.parametrize(("trials", "k"), [(1, 1), (5, 1), (10, 1), (11, 2), (15, 2), (100, 10)])
def test_window_is_ceil_of_ten_percent(trials: int, k: int) -> None:
    assert M.window(trials) == k


def test_improvement_known_answer_and_sign() -> None:
    curve = torch.arange(20, dtype=torch.float64)  # window 2: first mean 0.5, last mean 18.5
    assert M.improvement(curve).item() == pytest.approx(18.0)
    assert M.improvement(curve.flip(0)).item() == pytest.approx(-18.0)
    # a falling loss curve is an improvement: first minus last
    assert M.improvement(curve.flip(0), loss=True).item() == pytest.approx(18.0)
    per_task = torch.stack([curve, 2 * curve, torch.ones(20, dtype=torch.float64)])
    assert M.improvement(per_task).tolist() == pytest.approx([18.0, 36.0, 0.0])


def test_hand_computed_curves_regret_and_totals() -> None:
    # 2 tasks x 10 trials (window 1): task 0 learns from 0.2 to 0.8, task 1 is flat at 0.5
    e0 = [0.2, 0.2, 0.5, 0.5, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    traj = hand_trajectory([e0, [0.5] * 10], [[0.8] * 10, [0.5] * 10])
    assert M.reward_curve(traj)[0].item() == pytest.approx(0.35)
    assert M.reward_curve(traj)[-1].item() == pytest.approx(0.65)
    assert M.cumulative_regret(traj).tolist() == pytest.approx([2 * 0.6 + 2 * 0.3, 0.0])
    assert M.total_reward(traj).tolist() == pytest.approx([2 * 0.2 + 2 * 0.5 + 6 * 0.8, 5.0])
    out = M.summarize_trajectory(traj, make_family("dependent_bandit", num_trials=10))
    assert out["num_tasks"] == 2 and out["num_trials"] == 10
    assert out["reward_curve"][4] == pytest.approx(0.65)
    assert out["improvement"] == pytest.approx((0.6 + 0.0) / 2)
    assert out["regret"] == pytest.approx(0.9)
    assert out["total_reward"] == pytest.approx(5.6)
    lo, hi = out["regret_ci95"]  # resampling 2 tasks: means of 0, 0.9 or 1.8
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1.8)
    assert out["normalized_improvement"] is None  # no ideal trajectory given


def test_prediction_kind_reports_a_loss_curve_with_the_same_improvement() -> None:
    traj = hand_trajectory([[-4.0, -2.0, -1.0, -1.0, -1.0] * 2], [[0.0] * 10])
    stats = M.task_stats(traj)
    out = M.summarize(stats, kind="prediction")
    assert "reward_curve" not in out
    assert out["loss_curve"][0] == pytest.approx(4.0)
    assert out["improvement"] == pytest.approx(-1.0 - (-4.0))
    with pytest.raises(ValueError, match="kind"):
        M.summarize(stats, kind="control")


def test_bootstrap_interval_covers_the_true_mean_at_its_nominal_rate() -> None:
    # 200 synthetic data sets of 100 draws from N(3, 2^2): resampled together, one column each
    g = torch.Generator().manual_seed(123)
    data = 3.0 + 2.0 * torch.randn(100, 200, generator=g, dtype=torch.float64)
    ci = M.bootstrap_ci(data, num_resamples=1000, seed=0)  # (200, 2)
    covered = ((ci[:, 0] <= 3.0) & (3.0 <= ci[:, 1])).double().mean().item()
    assert 0.88 <= covered <= 0.99
    # width of a 95% interval of a mean: about 2 * 1.96 * sigma / sqrt(n) = 0.784
    assert (ci[:, 1] - ci[:, 0]).mean().item() == pytest.approx(0.784, rel=0.1)


def test_bootstrap_is_seeded_and_rejects_bad_input() -> None:
    x = torch.randn(50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(M.bootstrap_ci(x, seed=4), M.bootstrap_ci(x, seed=4))
    assert not torch.equal(M.bootstrap_ci(x, seed=4), M.bootstrap_ci(x, seed=5))
    assert M.bootstrap_ci(torch.full((30,), 2.5)).tolist() == pytest.approx([2.5, 2.5])
    with pytest.raises(ValueError, match="level"):
        M.bootstrap_ci(x, level=1.5)
    with pytest.raises(ValueError, match="values"):
        M.bootstrap_ci(torch.zeros(0))


def test_oracle_has_zero_regret_and_random_the_known_regret() -> None:
    family = make_family("dependent_bandit", num_trials=20)
    latent = family.sample_latent(4000, stream_generator(0, "eval"))
    out, trajs = M.evaluate_references(family, latent, seed=0, num_resamples=500)
    assert out["oracle"]["regret"] == 0.0 and out["oracle"]["regret_ci95"] == [0.0, 0.0]
    assert out["oracle"]["improvement"] == 0.0
    # random: E[max(p, 1 - p)] - 1/2 = 1/4 per trial, so 5 over 20 trials
    lo, hi = out["random"]["regret_ci95"]
    assert lo < 5.0 < hi
    # same tasks for every policy
    assert torch.equal(
        trajs["oracle"].optimal_expected_rewards, trajs["random"].optimal_expected_rewards
    )


def test_chunked_rollout_matches_its_own_seed_and_covers_every_task() -> None:
    family = make_family("dependent_bandit", num_trials=8)
    latent = family.sample_latent(50, stream_generator(1, "eval"))
    a, traj = M.rollout_stats(family, latent, RandomPolicy(), 3, chunk_size=7, keep_trajectory=True)
    b, _ = M.rollout_stats(family, latent, RandomPolicy(), 3, chunk_size=7)
    assert a.num_tasks == 50 and traj.expected_rewards.shape == (50, 8)
    assert torch.equal(a.regret, b.regret)
    assert torch.equal(traj.optimal_expected_rewards[:, 0], latent.probs.max(1).values)
    with pytest.raises(ValueError, match="chunk_size"):
        M.rollout_stats(family, latent, RandomPolicy(), 3, chunk_size=0)


class GreedyCounts(Policy):
    """Greedy on the dependent bandit's evidence (a stand-in ideal reference for the test)."""

    name = "greedy"

    def reset(self, family: Any, batch_size: int, generator: torch.Generator) -> Any:
        return torch.zeros(batch_size)  # evidence for arm 0 over arm 1

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator):
        tie = torch.randint(0, 2, pstate.shape, generator=generator)
        return torch.where(pstate == 0, tie, (pstate < 0).long()), pstate

    def update(self, pstate: Any, ctx: StepContext, action: torch.Tensor, out: Any) -> Any:
        sign = torch.where(action == 0, 1.0, -1.0)  # a win on arm 0 is a loss on arm 1
        return pstate + sign * (2 * out.reward - 1)


class WithIdeal(DependentBandit):
    """The dependent bandit with an ideal reference to normalize against."""

    ideal_reference = "greedy"

    def references(self) -> dict[str, Policy]:
        return {"oracle": OraclePolicy(), "random": RandomPolicy(), "greedy": GreedyCounts()}


def test_normalized_improvement_against_the_ideal_reference() -> None:
    family = WithIdeal(num_trials=30)
    latent = family.sample_latent(2000, stream_generator(0, "eval"))
    out, trajs = M.evaluate_references(family, latent, 0, names=["oracle", "random"])
    assert set(out) == {"oracle", "random"} and set(trajs) == {"oracle", "random"}
    assert out["oracle"]["normalized_improvement"] == 0.0
    full, _ = M.evaluate_references(family, latent, 0, keep_trajectories=False)
    assert full["greedy"]["improvement"] > 0.05
    assert full["greedy"]["normalized_improvement"] == pytest.approx(1.0)
    expected = full["random"]["improvement"] / full["greedy"]["improvement"]
    assert out["random"]["normalized_improvement"] == pytest.approx(expected)


def test_missing_ideal_reference_gives_none_and_unknown_policy_fails() -> None:
    family = make_family("dependent_bandit", num_trials=5)
    family.ideal_reference = "no_such_policy"  # a family without its ideal reference
    latent = family.sample_latent(100, stream_generator(0, "eval"))
    out, _ = M.evaluate_references(family, latent, 0, keep_trajectories=False)
    assert all(m["normalized_improvement"] is None for m in out.values())
    with pytest.raises(ValueError, match="policy"):
        M.evaluate_references(family, latent, 0, names=["thompsonn"])
    assert M.normalized_improvement(0.3, 0.0) is None
    assert M.normalized_improvement(0.3, math.nan) is None
    assert M.normalized_improvement(0.3, 0.6) == pytest.approx(0.5)


def test_ideal_statistics_must_come_from_the_same_tasks() -> None:
    a = M.task_stats(hand_trajectory([[0.1, 0.9]], [[0.9, 0.9]]))
    b = M.task_stats(hand_trajectory([[0.1, 0.9]] * 2, [[0.9, 0.9]] * 2))
    with pytest.raises(ValueError, match="ideal"):
        M.summarize(a, ideal=b)
