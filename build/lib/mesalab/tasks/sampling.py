"""Gamma and Dirichlet sampling that takes an explicit ``torch.Generator``.

``torch._standard_gamma`` and ``torch.distributions.Dirichlet`` accept no generator, so they
would break the seeding rule. This is Marsaglia and Tsang's (2000) method with a *fixed*
number of proposals per value: the amount of randomness drawn depends only on the shape of
``alpha``, never on which proposals are accepted, so a family that uses it still draws the same
random numbers whatever the action (common random numbers across policies).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Each proposal is accepted with probability > 0.95 (shape >= 1), so the chance that all
#: ten are rejected is < 1e-13; that value then falls back to d, the mode-like centre.
DEFAULT_PROPOSALS = 10


def sample_gamma(
    alpha: Tensor, generator: torch.Generator, proposals: int = DEFAULT_PROPOSALS
) -> Tensor:
    """Gamma(alpha, 1) draws of ``alpha``'s shape; every ``alpha`` must be > 0."""
    shape = alpha.shape
    dev, dtype = alpha.device, alpha.dtype if alpha.is_floating_point() else torch.float32
    a = alpha.to(dtype)
    # Shapes below 1 are boosted: Gamma(a) = Gamma(a + 1) * U^(1/a).
    boosted = torch.where(a < 1, a + 1, a)
    d = boosted - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    z = torch.randn((proposals, *shape), generator=generator, device=dev, dtype=dtype)
    u = torch.rand((proposals, *shape), generator=generator, device=dev, dtype=dtype)
    boost_u = torch.rand(shape, generator=generator, device=dev, dtype=dtype)
    v = (1.0 + c * z) ** 3  # (P, *shape)
    log_v = torch.log(v.clamp_min(torch.finfo(dtype).tiny))
    accept = (v > 0) & (torch.log(u) < 0.5 * z**2 + d - d * v + d * log_v)
    # argmax returns the first maximal index: the first accepted proposal.
    first = accept.to(torch.int8).argmax(dim=0, keepdim=True)  # (1, *shape)
    draw = (d * v).gather(0, first)[0]
    draw = torch.where(accept.any(dim=0), draw, d)
    return torch.where(a < 1, draw * boost_u ** (1.0 / a), draw)


def sample_dirichlet(
    alpha: Tensor, generator: torch.Generator, proposals: int = DEFAULT_PROPOSALS
) -> Tensor:
    """Dirichlet draws over the last dimension of ``alpha`` (normalised Gamma draws)."""
    g = sample_gamma(alpha, generator, proposals)
    # Tiny shapes can underflow every component to 0; the floor keeps rows normalisable.
    g = g.clamp_min(torch.finfo(g.dtype).tiny)
    return g / g.sum(dim=-1, keepdim=True)
