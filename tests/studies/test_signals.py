"""Known answers for the A2C advantages: Monte Carlo returns and GAE(gamma, lambda)."""

from __future__ import annotations

import pytest
import torch

from mesalab.studies.signals import A2C, discounted_returns


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
