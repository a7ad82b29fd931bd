"""Known answers for the A2C advantages (Monte Carlo returns, GAE) and PPO's clipped surrogate."""

from __future__ import annotations

import pytest
import torch

from mesalab.studies.signals import A2C, PPO, discounted_returns


def test_discounted_returns_by_hand() -> None:
    r = torch.tensor([[1.0, 0.0, 1.0]])
    # G_2 = 1, G_1 = 0 + 0.5 * 1, G_0 = 1 + 0.5 * 0.5
    assert torch.allclose(discounted_returns(r, 0.5), torch.tensor([[1.25, 0.5, 1.0]]))


def test_monte_carlo_advantage_is_return_minus_value() -> None:
    r = torch.tensor([[1.0, 0.0, 1.0]])
    v = torch.tensor([[0.2, 0.4, 0.6]])
    adv, target = A2C(gamma=0.5).advantages(r, v)
    assert torch.allclose(target, torch.tensor([[1.25, 0.5, 1.0]]))
    assert torch.allclose(adv, target - v)


def test_gae_lambda_zero_is_the_td_error() -> None:
    r = torch.tensor([[1.0, 0.0, 1.0]])
    v = torch.tensor([[0.2, 0.4, 0.6]])
    adv, target = A2C(gamma=0.5, gae_lambda=0.0).advantages(r, v)
    # delta_t = r_t + 0.5 V_{t+1} - V_t, with V = 0 after the last trial
    delta = torch.tensor([[1.0 + 0.2 - 0.2, 0.0 + 0.3 - 0.4, 1.0 - 0.6]])
    assert torch.allclose(adv, delta)
    assert torch.allclose(target, delta + v)


def test_gae_intermediate_lambda_by_hand() -> None:
    r = torch.tensor([[1.0, 0.0, 1.0]])
    v = torch.tensor([[0.2, 0.4, 0.6]])
    adv, _ = A2C(gamma=0.5, gae_lambda=0.5).advantages(r, v)
    d = [1.0, -0.1, 0.4]
    expected = [d[0] + 0.25 * d[1] + 0.0625 * d[2], d[1] + 0.25 * d[2], d[2]]
    assert torch.allclose(adv, torch.tensor([expected]))


def test_gae_lambda_one_matches_monte_carlo_for_any_value() -> None:
    g = torch.Generator().manual_seed(0)
    r = torch.rand(4, 7, generator=g)
    v = torch.randn(4, 7, generator=g)
    mc, _ = A2C(gamma=0.9).advantages(r, v)
    # the telescoping GAE sum with lambda = 1 is the Monte Carlo advantage
    nearly = A2C(gamma=0.9, gae_lambda=1.0 - 1e-7)
    gae, _ = nearly.advantages(r, v)
    assert torch.allclose(mc, gae, atol=1e-4)


def test_bad_lambda_names_the_field() -> None:
    with pytest.raises(ValueError, match="gae_lambda"):
        A2C(gae_lambda=1.5)


# PPO: the clipped surrogate and its passes


def _discrete(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor):
    """A (1, B, T) population output and trajectory for the loss alone."""
    from mesalab.archs.base import LearnerOutput
    from mesalab.tasks.rollout import Trajectory

    b, t = actions.shape[-2:]
    value = torch.zeros(1, b, t, requires_grad=True)
    out = LearnerOutput(logits=logits, value=value, mean=logits, features=logits)
    zeros = torch.zeros(1, b, t)
    traj = Trajectory(
        inputs=torch.zeros(1, b, t, 1),
        actions=actions,
        rewards=rewards,
        expected_rewards=zeros,
        optimal_expected_rewards=zeros,
        oracle_actions=actions,
        feedback=zeros[..., None],
    )
    return out, traj


def test_ppo_first_pass_gradient_is_a2c_gradient() -> None:
    """At the acting weights (ratio 1) the clipped surrogate's gradient is the policy gradient."""
    from mesalab.studies.policy.action_heads import DiscreteHead

    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 4, 5, 3, generator=g)
    actions = torch.randint(0, 3, (1, 4, 5), generator=g)
    rewards = torch.rand(1, 4, 5, generator=g)
    grads = []
    for sig in (A2C(gamma=0.8), PPO(gamma=0.8, epochs=1)):
        logits = base.clone().requires_grad_(True)
        out, traj = _discrete(logits, actions, rewards)
        head = DiscreteHead()
        extra = {"behaviour": sig.behaviour(out, traj, head)} if isinstance(sig, PPO) else {}
        loss, _ = sig.population_loss(out, traj, head, 0.0, **extra)
        loss.sum().backward()
        grads.append(logits.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-7)
    assert grads[0].abs().sum() > 0


def test_ppo_clips_only_where_the_ratio_left_the_band_in_the_advantages_direction() -> None:
    from mesalab.studies.policy.action_heads import DiscreteHead

    head = DiscreteHead()
    sig = PPO(gamma=0.0, value_coef=0.0, entropy_coef=0.0, clip=0.2)
    # two episodes of one trial, action 0 taken; rewards give advantages +1 and -1 (value 0)
    actions = torch.zeros(1, 2, 1, dtype=torch.long)
    rewards = torch.tensor([[[1.0], [-1.0]]])
    logits = torch.zeros(1, 2, 1, 2, requires_grad=True)
    out, traj = _discrete(logits, actions, rewards)
    behaviour = sig.behaviour(out, traj, head)
    # the old policy gave action 0 probability 1/3: the current one (1/2) has ratio 1.5
    behaviour["logp"] = torch.full_like(behaviour["logp"], -torch.log(torch.tensor(3.0)))
    loss, metrics = sig.population_loss(out, traj, head, 0.0, behaviour=behaviour)
    loss.sum().backward()
    grad = logits.grad[0, :, 0]  # (B, A)
    assert torch.equal(grad[0], torch.zeros(2))  # A > 0 and r > 1 + clip: clipped, no gradient
    assert grad[1].abs().sum() > 0  # A < 0 and r > 1 + clip: the unclipped term, still pushed
    assert float(metrics["losses/clip_fraction"][0]) == 1.0
    assert float(metrics["losses/approx_kl"][0]) > 0


def test_passes_cut_the_batch_into_minibatches_each_epoch() -> None:
    assert A2C().passes(64) == [slice(0, 64)]
    assert PPO(epochs=2, minibatches=3).passes(8) == [slice(0, 3), slice(3, 5), slice(5, 8)] * 2
    with pytest.raises(ValueError, match="minibatches"):
        PPO(minibatches=9).passes(8)
    with pytest.raises(ValueError, match="training.signal.epochs"):
        PPO(epochs=0)
    with pytest.raises(ValueError, match="training.signal.clip"):
        PPO(clip=0.0)


def test_ppo_config_is_an_rl_condition_named_ppo() -> None:
    from mesalab.studies.conditions import group_option, signal_condition

    node = group_option("training", "ppo")
    assert node["name"] == "ppo"
    assert node["signal"]["gamma"] == 0.7  # the study's A2C settings (rl_short_horizon)
    assert signal_condition(node) == "rl"
