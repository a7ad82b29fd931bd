"""Markov-chain prediction: dynamics, drift, and the Bayesian predictors."""

from __future__ import annotations

import math

import pytest
import torch

from mesalab.tasks import rollout, stream_generator
from mesalab.tasks.base import index_batch
from mesalab.tasks.markov_chain import MarkovChain, normalise_prediction
from mesalab.tasks.references.markov_refs import BigramPolicy, ChangePointBigramPolicy


def _run(family, policy, n=500, prior="train"):
    latent = family.sample_latent(n, stream_generator(0, "eval"), prior)
    return rollout(
        family, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(3)
    )


def test_next_state_frequencies_follow_the_matrix():
    family = MarkovChain()
    g = torch.Generator().manual_seed(0)
    one = family.sample_latent(1, g)
    latent = index_batch(one, torch.zeros(30000, dtype=torch.long))  # one task, many rows
    state = family.reset(latent, g)
    _, out = family.step(latent, state, torch.full((30000, 3), 1 / 3), g)
    freq = out.feedback.mean(0)
    row = one.trans[0, one.s0[0]]
    torch.testing.assert_close(freq, row, atol=0.015, rtol=0)  # standard error <= 0.003
    torch.testing.assert_close(one.trans.sum(-1), torch.ones(1, 3))


def test_rewards_are_log_probabilities():
    family = MarkovChain()
    g = torch.Generator().manual_seed(1)
    latent = family.sample_latent(8, g)
    state = family.reset(latent, g)
    pred = torch.tensor([0.5, 0.3, 0.2]).expand(8, 3)
    _, out = family.step(latent, state, pred, g)
    nxt = out.feedback.argmax(1)
    torch.testing.assert_close(out.reward, pred[torch.arange(8), nxt].log())
    row = latent.trans[torch.arange(8), latent.s0]
    torch.testing.assert_close(out.expected_reward, (row * pred.log()).sum(1))
    torch.testing.assert_close(out.optimal_expected_reward, (row * row.log()).sum(1))
    # Zeros and unnormalised vectors are valid predictions with a finite loss.
    q = normalise_prediction(torch.tensor([[0.0, 2.0, 2.0]]), 3)
    assert torch.isfinite(q.log()).all() and q.sum().item() == pytest.approx(1.0)


def test_bigram_predictive_by_hand():
    family = MarkovChain()
    latent = family.sample_latent(1, torch.Generator().manual_seed(0))
    policy = BigramPolicy()
    counts = policy.reset(family, 1, torch.Generator())
    counts[0, 0] = torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)

    class Ctx:
        obs = torch.tensor([[1.0, 0.0, 0.0]])

    Ctx.latent = latent
    pred, _ = policy.act(counts, Ctx(), torch.Generator())
    # Dirichlet(1) prior: (1 + c_j) / (3 + 4)
    torch.testing.assert_close(pred, torch.tensor([[4 / 7, 2 / 7, 1 / 7]]))


def test_change_point_filter_equals_bigram_without_drift():
    family = MarkovChain(num_trials=30)
    a = _run(family, BigramPolicy(), n=100)
    b = _run(family, ChangePointBigramPolicy(), n=100)
    torch.testing.assert_close(a.actions, b.actions)


def test_change_point_filter_with_certain_changes_predicts_uniform():
    family = MarkovChain(num_trials=20, hazard=1.0)
    traj = _run(family, ChangePointBigramPolicy(), n=50)
    torch.testing.assert_close(traj.actions, torch.full_like(traj.actions, 1 / 3))


def test_drift_changes_the_matrix_only_when_asked():
    g = torch.Generator().manual_seed(0)
    for hazard, changes in ((0.0, False), (1.0, True)):
        family = MarkovChain(hazard=hazard)
        latent = family.sample_latent(64, g)
        state = family.reset(latent, g)
        new, _ = family.step(latent, state, torch.full((64, 3), 1 / 3), g)
        assert (new.trans != state.trans).any(-1).any(-1).all() == changes


def test_bayesian_predictors_beat_the_simple_ones():
    family = MarkovChain()
    refs = family.references()
    totals = {
        k: _run(family, p, n=200).expected_rewards.sum(1).mean().item() for k, p in refs.items()
    }
    assert totals["oracle"] > totals["bayes_optimal"] > totals["unigram"] + 5
    assert totals["random"] == pytest.approx(-100 * math.log(3), abs=1e-3)
    # With drift the change-point filter beats the bigram that never forgets.
    drift = {
        k: _run(family, refs[k], n=200, prior="drifting").expected_rewards.sum(1).mean().item()
        for k in ("bigram", "bayes_optimal")
    }
    assert drift["bayes_optimal"] > drift["bigram"] + 2


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="num_states"):
        MarkovChain(num_states=1)
    with pytest.raises(ValueError, match="alpha"):
        MarkovChain(alpha=0.0)
    with pytest.raises(ValueError, match="hazard"):
        MarkovChain(hazard=1.5)
