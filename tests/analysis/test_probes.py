"""Linear probes: a planted linear code is recovered, and noise is not."""

from __future__ import annotations

import pytest
import torch

from mesalab.analysis.probes import r2_score, ridge_probe, split_tasks


def planted(noise_only: bool, n: int = 200, t: int = 10, h: int = 16, f: int = 3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, t, h, generator=g) * torch.rand(h, generator=g) * 5  # uneven scales
    code = torch.randn(h, f, generator=g)
    y = x @ code + 0.01 * torch.randn(n, t, f, generator=g) + 3.0
    if noise_only:
        y = torch.randn(n, t, f, generator=g)
    return x, y


def test_planted_linear_code_is_recovered() -> None:
    x, y = planted(noise_only=False)
    train, test = split_tasks(x.shape[0])
    res = ridge_probe(x, y, train, test)
    assert res["r2"] > 0.999
    assert all(r > 0.999 for r in res["r2_per_target"])


def test_noise_scores_near_zero() -> None:
    x, y = planted(noise_only=True)
    train, test = split_tasks(x.shape[0])
    res = ridge_probe(x, y, train, test)
    assert abs(res["r2"]) < 0.03


def test_r2_score_known_values() -> None:
    y = torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    pooled, per = r2_score(y, torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64))
    assert per == [0.0, None] and pooled == 0.0
    assert r2_score(y, y)[0] == 1.0


def test_split_is_disjoint_and_complete() -> None:
    train, test = split_tasks(11, seed=3)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(11))


def test_activation_sources() -> None:
    from mesalab.analysis.probes import activations
    from mesalab.archs.base import Learner
    from mesalab.archs.recurrent import LSTMCore
    from mesalab.archs.transformer import TransformerCore

    x = torch.randn(3, 5, 6)
    lstm = Learner(LSTMCore(6, hidden_size=8), 2)
    feats = activations(lstm, x, "features")
    mem = activations(lstm, x, "memory")
    assert feats.shape == (3, 5, 8) and mem.shape == (3, 5, 16)
    torch.testing.assert_close(mem[..., :8], feats)  # h is the LSTM's output
    gpt = Learner(TransformerCore(6, d_model=8, num_layers=1, num_heads=2), 2)
    assert activations(gpt, x, "features").shape == (3, 5, 8)
    with pytest.raises(ValueError, match="source"):
        activations(gpt, x, "memory")
