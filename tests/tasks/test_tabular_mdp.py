"""Random tabular MDPs: value iteration, episode structure, regret, and PSRL."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import rollout, stream_generator
from mesalab.tasks.base import RandomPolicy
from mesalab.tasks.tabular_mdp import TabularMDP, finite_horizon_q


def _run(family, policy, n=200, prior="train"):
    latent = family.sample_latent(n, stream_generator(0, "eval"), prior)
    return rollout(
        family, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(3)
    )


def test_value_iteration_by_hand():
    # Two states, two actions. Action 0 stays, action 1 moves to the other state.
    # Rewards: state 0 pays 0 (stay) or 0 (move); state 1 pays 1 (stay) or 0 (move).
    trans = torch.zeros(1, 2, 2, 2)
    trans[0, 0, 0, 0] = trans[0, 1, 0, 1] = 1.0  # stay
    trans[0, 0, 1, 1] = trans[0, 1, 1, 0] = 1.0  # move
    reward = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    q = finite_horizon_q(trans, reward, 3)[0]  # (H, S, A)
    # One step left: Q = reward. Two: Q(s, a) = r(s, a) + max Q_1(next); three likewise.
    torch.testing.assert_close(q[0], reward[0])
    torch.testing.assert_close(q[1], torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    torch.testing.assert_close(q[2], torch.tensor([[1.0, 2.0], [3.0, 1.0]]))


def test_prior_and_episode_structure():
    family = TabularMDP(num_trials=30)
    assert family.num_episodes == 3 and family.obs_dim == 11
    latent = family.sample_latent(500, torch.Generator().manual_seed(0))
    torch.testing.assert_close(latent.trans.sum(-1), torch.ones(500, 10, 5))
    assert abs(latent.mean_reward.mean().item() - 1.0) < 0.02  # N(1, 1), 25k draws
    assert abs(latent.mean_reward.std().item() - 1.0) < 0.02
    traj = _run(family, RandomPolicy(), n=500)
    obs = traj.inputs[:, :, : family.obs_dim]
    flags = obs[:, :, -1]
    expected = torch.zeros(30)
    expected[[0, 10, 20]] = 1.0
    assert torch.equal(flags, expected.expand(500, 30))
    assert torch.equal(obs[:, :, :10].sum(-1), torch.ones(500, 30))  # one-hot state
    noise = traj.rewards - traj.expected_rewards
    assert abs(noise.std().item() - 1.0) < 0.02  # unit-variance rewards, 15k draws
    # Start states are uniform (1500 starts: each state 10% +- 0.8%).
    starts = obs[:, [0, 10, 20], :10].reshape(-1, 10).mean(0)
    assert (starts - 0.1).abs().max().item() < 0.035


def test_regret_sums_to_the_value_gap():
    """Performance difference: E[sum of per-trial regret] = E[V*(s_0)] - E[return] per episode."""
    family = TabularMDP(num_trials=10)
    n = 4000
    latent = family.sample_latent(n, stream_generator(0, "eval"))
    traj = rollout(
        family,
        latent,
        RandomPolicy(),
        stream_generator(1, "eval"),
        torch.Generator().manual_seed(3),
    )
    s0 = traj.inputs[:, 0, :10].argmax(1)
    q = finite_horizon_q(latent.trans, latent.mean_reward, family.horizon)
    v_star = q[torch.arange(n), -1, s0].max(-1).values
    gap = v_star - traj.expected_rewards.sum(1)
    regret = traj.regret.sum(1)
    diff = regret - gap
    # Both estimate the same expectation; their paired difference has mean 0.
    assert abs(diff.mean().item()) < 3 * diff.std().item() / n**0.5
    assert (traj.regret >= 0).all()


def test_last_episode_cut_short():
    """num_trials=13, horizon=10: a full episode, then one of 3 steps planned as such."""
    family = TabularMDP(num_trials=13)
    assert family.num_episodes == 2
    left = family.steps_left(torch.arange(13))
    assert left.tolist() == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 3, 2, 1]
    n = 2000
    latent = family.sample_latent(n, stream_generator(0, "eval"))
    traj = rollout(
        family,
        latent,
        RandomPolicy(),
        stream_generator(1, "eval"),
        torch.Generator().manual_seed(3),
    )
    flags = traj.inputs[:, :, family.num_states]
    assert torch.equal(flags[0], torch.tensor([1.0] + [0.0] * 9 + [1.0, 0.0, 0.0]))
    # Performance difference on the cut episode: its regret sums to V*_3(s_10) - return.
    s10 = traj.inputs[:, 10, :10].argmax(1)
    q = finite_horizon_q(latent.trans, latent.mean_reward, family.horizon)
    v3 = q[torch.arange(n), 2, s10].max(-1).values
    diff = traj.regret[:, 10:].sum(1) - (v3 - traj.expected_rewards[:, 10:].sum(1))
    assert abs(diff.mean().item()) < 3 * diff.std().item() / n**0.5
    # The oracle plans for the 3 steps left (not 10), so it has no regret there either. The
    # restart state is drawn the same way whatever the actions, so it starts in s_10 too.
    oracle = rollout(
        family,
        latent,
        family.references()["oracle"],
        stream_generator(1, "eval"),
        torch.Generator(),
    )
    assert torch.allclose(oracle.regret, torch.zeros_like(oracle.regret), atol=1e-5)
    assert torch.equal(oracle.inputs[:, 10, :10].argmax(1), s10)
    rows = torch.arange(n)
    best3, best10 = q[rows, 2, s10].argmax(-1), q[rows, 9, s10].argmax(-1)
    assert torch.equal(oracle.actions[:, 10], best3)
    assert (best3 != best10).any()  # planning for 10 steps would act differently


def test_psrl_learns_across_episodes():
    family = TabularMDP()
    refs = family.references()
    psrl = _run(family, refs["psrl"])
    rand = _run(family, refs["random"])
    oracle = _run(family, refs["oracle"])
    total = {
        k: t.expected_rewards.sum(1).mean().item()
        for k, t in {"psrl": psrl, "random": rand, "oracle": oracle}.items()
    }
    assert total["oracle"] > total["psrl"] > total["random"] + 15
    per_episode = psrl.expected_rewards.reshape(200, 10, 10).sum(-1).mean(0)
    assert per_episode[-1] > per_episode[0] + 3  # in-context improvement
    # The first episode follows a sample from the prior: no better than chance by much.
    assert per_episode[0] < rand.expected_rewards.reshape(200, 10, 10).sum(-1).mean() + 2


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="num_actions"):
        TabularMDP(num_actions=1)
    with pytest.raises(ValueError, match="horizon"):
        TabularMDP(horizon=0)
    with pytest.raises(ValueError, match="num_trials=0"):
        TabularMDP(num_trials=0)
