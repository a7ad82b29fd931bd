"""Gamma and Dirichlet sampling with an explicit generator."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks.sampling import sample_dirichlet, sample_gamma

N = 200_000


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.5])
def test_gamma_moments(alpha):
    x = sample_gamma(torch.full((N,), alpha), torch.Generator().manual_seed(0))
    assert (x >= 0).all()
    # Gamma(a, 1): mean a, variance a; the mean's standard error is sqrt(a / N).
    se = (alpha / N) ** 0.5
    assert abs(x.double().mean().item() - alpha) < 4 * se
    # E[log X] = digamma(a) (checks the shape of the law, not only two moments).
    if alpha >= 1:
        log_mean = x.double().log().mean().item()
        log_se = (torch.special.polygamma(1, torch.tensor(alpha)).item() / N) ** 0.5
        assert abs(log_mean - torch.special.digamma(torch.tensor(alpha)).item()) < 4 * log_se


def test_gamma_is_seeded_and_draws_a_fixed_amount():
    a = torch.tensor([0.3, 1.0, 7.0])
    x1 = sample_gamma(a, torch.Generator().manual_seed(1))
    x2 = sample_gamma(a, torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2)
    # The random numbers consumed depend on the shape only, never on the values of alpha.
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    sample_gamma(a, g1)
    sample_gamma(torch.tensor([50.0, 0.01, 2.0]), g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_dirichlet_rows_and_mean():
    alpha = torch.tensor([1.0, 2.0, 5.0]).expand(N // 4, 3)
    d = sample_dirichlet(alpha, torch.Generator().manual_seed(2))
    torch.testing.assert_close(d.sum(dim=1), torch.ones(d.shape[0]))
    torch.testing.assert_close(d.mean(dim=0), torch.tensor([0.125, 0.25, 0.625]), atol=3e-3, rtol=0)
