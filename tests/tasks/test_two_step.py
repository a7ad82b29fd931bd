"""The two-step task: its statistics, and the stay patterns of its reference agents."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import rollout, stream_generator
from mesalab.tasks.base import RandomPolicy
from mesalab.tasks.references.two_step_refs import BayesTwoStepPolicy
from mesalab.tasks.two_step import TwoStep


def _run(policy, n=2000, prior="train", family=None):
    family = family or TwoStep()
    latent = family.sample_latent(n, stream_generator(0, "eval"), prior)
    return rollout(
        family, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(7)
    )


def test_task_statistics():
    traj = _run(RandomPolicy())
    common = traj.info["common"].float()
    # 200k trials: standard errors are about 0.001 (transitions) and 0.0004 (swaps).
    assert abs(common.mean().item() - 0.8) < 0.005
    reached_good = traj.info["state2"] == traj.info["good_state"]
    assert abs(traj.rewards[reached_good].mean().item() - 0.9) < 0.005
    assert abs(traj.rewards[~reached_good].mean().item() - 0.1) < 0.005
    swaps = (traj.info["good_state"][:, 1:] != traj.info["good_state"][:, :-1]).float()
    assert abs(swaps.mean().item() - 0.025) < 0.002
    # The feedback is [reward, one-hot reached state].
    assert torch.equal(traj.feedback[..., 0], traj.rewards)
    assert torch.equal(traj.feedback[..., 1:].argmax(-1), traj.info["state2"])
    assert torch.equal(traj.feedback[..., 1:].sum(-1), torch.ones_like(traj.rewards))


def test_expected_rewards_by_hand():
    family = TwoStep()
    latent = family.sample_latent(4, torch.Generator().manual_seed(0))
    state = family.reset(latent, torch.Generator())
    values = family.expected_rewards(latent, state)
    good = state.good
    # Toward the good state: 0.8 * 0.9 + 0.2 * 0.1 = 0.74; away from it: 0.26.
    torch.testing.assert_close(values.gather(1, good[:, None])[:, 0], torch.full((4,), 0.74))
    torch.testing.assert_close(values.gather(1, 1 - good[:, None])[:, 0], torch.full((4,), 0.26))


def test_bayes_update_by_hand():
    family = TwoStep()
    latent = family.sample_latent(2, torch.Generator().manual_seed(0))
    policy = BayesTwoStepPolicy()
    b = policy.reset(family, 2, torch.Generator())

    class Out:
        # row 0: reached A, rewarded; row 1: reached A, not rewarded
        feedback = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])

    class Ctx:
        pass

    ctx = Ctx()
    ctx.latent = latent
    post = policy.update(b, ctx, torch.zeros(2, dtype=torch.long), Out())
    # Bayes: 0.9 (row 0) and 0.1 (row 1), then the 0.025 hazard mixes toward 0.5.
    expected = torch.tensor([0.9 * 0.975 + 0.1 * 0.025, 0.1 * 0.975 + 0.9 * 0.025])
    torch.testing.assert_close(post, expected.double())


def _stay_table(traj, correct: bool | None = None) -> dict[str, float]:
    """P(stay) by reward x transition, optionally among trials whose choice was correct."""
    a = traj.actions
    stay = (a[:, 1:] == a[:, :-1]).float()
    rew = traj.rewards[:, :-1] > 0
    com = traj.info["common"][:, :-1]
    keep = torch.ones_like(rew)
    if correct is not None:
        keep = (a[:, :-1] == traj.info["good_state"][:, :-1]) == correct
    cells = {"RC": rew & com, "RR": rew & ~com, "UC": ~rew & com, "UR": ~rew & ~com}
    return {k: stay[m & keep].mean().item() for k, m in cells.items()}


def _interaction(p: dict[str, float]) -> float:
    return (p["RC"] - p["RR"]) - (p["UC"] - p["UR"])


def _reward_effect(p: dict[str, float]) -> float:
    return (p["RC"] + p["RR"] - p["UC"] - p["UR"]) / 2


def test_model_based_shows_the_interaction():
    traj = _run(TwoStep().references()["model_based"])
    assert _interaction(_stay_table(traj)) > 0.5
    # Also among correct choices (no confound with the values held before the trial).
    assert _interaction(_stay_table(traj, correct=True)) > 0.2


def test_model_free_shows_a_reward_effect_only():
    """Among trials with the same choice quality, the transition does not matter to model-free.

    The raw table is confounded (Akam et al. 2015): a rare transition that was rewarded
    mostly follows a wrong choice, whose value was low. Conditioning on whether the choice
    was correct removes it, since transition and reward are then independent of the values.
    """
    traj = _run(TwoStep().references()["model_free"])
    for correct in (True, False):
        table = _stay_table(traj, correct=correct)
        assert abs(_interaction(table)) < 0.05
        assert _reward_effect(table) > 0.2


def test_ordering_of_references():
    totals = {
        name: _run(policy).expected_rewards.sum(1).mean().item()
        for name, policy in TwoStep().references().items()
    }
    assert totals["oracle"] > totals["bayes_optimal"] > totals["model_based"]
    assert totals["bayes_optimal"] > totals["model_free"] > totals["random"] + 5
    # Exact expectations: the oracle always gets 0.74 and random 0.5 per trial.
    assert totals["oracle"] == pytest.approx(74.0, abs=1e-3)
    assert totals["random"] == pytest.approx(50.0, abs=0.5)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="common_prob"):
        TwoStep(common_prob=0.4)
    with pytest.raises(ValueError, match="swap_prob"):
        TwoStep(swap_prob=-0.1)
    with pytest.raises(ValueError, match="num_trials"):
        TwoStep(num_trials=0)
