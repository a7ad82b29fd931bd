"""Harlow's task: the shuffling, the object pools, and the one-shot ideal observer."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import TaskDistribution, rollout, stream_generator
from mesalab.tasks.harlow import Harlow


def _run(family, policy, n=1000, prior="train", dist=None):
    latent = family.sample_latent(n, stream_generator(0, "eval"), prior)
    return rollout(
        family, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(3), dist
    )


def test_observation_is_the_two_objects_in_shuffled_order():
    family = Harlow()
    g = torch.Generator().manual_seed(0)
    latent = family.sample_latent(2000, g)
    state = family.reset(latent, g)
    lefts = []
    for _ in range(family.num_trials):
        obs = family.observe(latent, state).reshape(2000, 2, family.object_dim)
        left = state.left
        assert torch.equal(obs[torch.arange(2000), 0], latent.objects[torch.arange(2000), left])
        assert torch.equal(obs[torch.arange(2000), 1], latent.objects[torch.arange(2000), 1 - left])
        lefts.append(left.float())
        state, out = family.step(latent, state, torch.zeros(2000, dtype=torch.long), g)
        # Choosing left is rewarded exactly when the rewarded object (row 0) was on the left.
        assert torch.equal(out.reward, (left == 0).float())
    # Positions are a fair coin every trial (12k coins: standard error 0.0046).
    assert abs(torch.stack(lefts).mean().item() - 0.5) < 0.02


def test_one_shot_observer_is_perfect_after_the_first_trial():
    family = Harlow()
    traj = _run(family, family.references()["one_shot"])
    acc = traj.expected_rewards.mean(0)
    assert abs(acc[0].item() - 0.5) < 0.06  # a coin on trial 1 (standard error 0.016)
    assert torch.equal(traj.expected_rewards[:, 1:], torch.ones_like(traj.expected_rewards[:, 1:]))
    oracle = _run(family, family.references()["oracle"])
    assert torch.equal(oracle.expected_rewards, torch.ones_like(oracle.expected_rewards))


def test_one_shot_cannot_learn_when_objects_change_every_trial():
    family = Harlow()
    dist = TaskDistribution(family, mode="trialwise")
    traj = _run(family, family.references()["one_shot"], dist=dist)
    assert abs(traj.expected_rewards[:, 1:].mean().item() - 0.5) < 0.03


def test_finite_pools_split_training_and_novel_objects():
    family = Harlow(num_objects=50)
    g = torch.Generator().manual_seed(0)
    train = family.sample_latent(3000, g, "train").objects.reshape(-1, family.object_dim)
    novel = family.sample_latent(3000, g, "novel").objects.reshape(-1, family.object_dim)
    table = family.table
    train_ids = (train[:, None, :] == table[None]).all(-1).float().argmax(1)
    novel_ids = (novel[:, None, :] == table[None]).all(-1).float().argmax(1)
    assert (train_ids % 2 == 0).all() and (novel_ids % 2 == 1).all()
    assert torch.unique(train_ids).numel() == 50  # the whole training half is used
    pairs = family.sample_latent(3000, g).objects
    assert not (pairs[:, 0] == pairs[:, 1]).all(-1).any()  # two distinct objects per episode


def test_fresh_objects_differ_between_training_and_evaluation_streams():
    family = Harlow()
    train = family.sample_latent(500, stream_generator(0, "train")).objects.reshape(-1, 8)
    heldout = family.sample_latent(500, stream_generator(0, "eval")).objects.reshape(-1, 8)
    assert not (train[:, None, :] == heldout[None]).all(-1).any()


def test_similar_prior_correlation():
    family = Harlow()
    obj = family.sample_latent(20000, torch.Generator().manual_seed(0), "similar").objects
    corr = torch.corrcoef(torch.stack([obj[:, 0].flatten(), obj[:, 1].flatten()]))[0, 1]
    assert abs(corr.item() - 0.9) < 0.01


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="num_objects"):
        Harlow(num_objects=1)
    with pytest.raises(ValueError, match="object_dim"):
        Harlow(object_dim=0)
