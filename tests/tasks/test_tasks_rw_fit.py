"""The Rescorla-Wagner maximum-likelihood fit recovers the parameters that made the choices."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import TaskDistribution, rollout, stream_generator
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.references.rescorla_wagner import RescorlaWagner, fit_rescorla_wagner


def simulate(alpha: float, beta: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    family = BernoulliBandit(num_trials=100)
    env = stream_generator(seed, "train")
    latent = TaskDistribution(family).sample(n, env)
    policy_g = torch.Generator().manual_seed(seed)
    traj = rollout(family, latent, RescorlaWagner(alpha=alpha, beta=beta), env, policy_g)
    return traj.actions, traj.rewards


@pytest.mark.parametrize("alpha,beta", [(0.3, 5.0), (0.1, 10.0), (0.6, 3.0)])
def test_pooled_fit_recovers_parameters(alpha: float, beta: float) -> None:
    # 300 episodes x 100 choices: standard errors about 0.005 (alpha) and 2% (beta).
    actions, rewards = simulate(alpha, beta, 300, seed=int(alpha * 100))
    a_hat, b_hat = fit_rescorla_wagner(actions, rewards, num_actions=2)
    assert a_hat.shape == () and b_hat.shape == ()
    assert abs(float(a_hat) - alpha) < 0.03
    assert abs(float(b_hat) / beta - 1) < 0.1


def test_per_sequence_fit() -> None:
    actions, rewards = simulate(0.3, 5.0, 64, seed=7)
    a_hat, b_hat = fit_rescorla_wagner(actions, rewards, num_actions=2, per_sequence=True)
    assert a_hat.shape == (64,) and b_hat.shape == (64,)
    assert ((a_hat > 0) & (a_hat < 1)).all() and (b_hat > 0).all()
    # One sequence is noisy, the median over sequences is not.
    assert abs(float(a_hat.median()) - 0.3) < 0.08
    assert abs(float(b_hat.median()) / 5.0 - 1) < 0.25
    # The per-sequence problems are separate: fitting them together gives each sequence's
    # own maximum, the pooled fit of that sequence alone (both converge to ~1e-6 in logit).
    for i in range(4):
        a1, b1 = fit_rescorla_wagner(actions[i : i + 1], rewards[i : i + 1], num_actions=2)
        assert float(a1) == pytest.approx(float(a_hat[i]), abs=2e-3), i
        assert float(b1) == pytest.approx(float(b_hat[i]), rel=1e-2), i
