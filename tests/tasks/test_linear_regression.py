"""In-context linear regression: the task's statistics and its reference predictors."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import rollout, stream_generator
from mesalab.tasks.linear_regression import LinearRegression
from mesalab.tasks.references.regression_refs import (
    AveragingPolicy,
    GradientDescentPolicy,
    History,
    LeastSquaresPolicy,
    NearestNeighboursPolicy,
    RidgePolicy,
)


class _Ctx:
    """A minimal StepContext for calling estimators directly."""

    def __init__(self, latent, obs):
        self.latent, self.obs = latent, obs


def _history(n: int, d: int = 5, b: int = 64, t: int = 11, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, t, d, dtype=torch.float64)
    y = torch.zeros(b, t, dtype=torch.float64)
    x[:, :n] = torch.randn(b, n, d, generator=g, dtype=torch.float64)
    y[:, :n] = torch.randn(b, n, generator=g, dtype=torch.float64)
    family = LinearRegression(dim=d)
    latent = family.sample_latent(b, g)
    return History(x=x, y=y, n=n), x[:, :n], y[:, :n], latent


@pytest.mark.parametrize("n", [1, 3, 5, 8])
def test_ridge_is_the_closed_form_posterior_mean(n):
    hist, x, y, latent = _history(n)
    w = RidgePolicy().weights(hist, _Ctx(latent, None))
    lam = 0.25  # noise 0.5, prior scale 1
    eye = torch.eye(5, dtype=torch.float64)
    expected = torch.linalg.solve(x.mT @ x + lam * eye, (x.mT @ y[:, :, None]))[:, :, 0]
    torch.testing.assert_close(w, expected)


def test_noiseless_ridge_is_the_min_norm_interpolant():
    hist, x, y, latent = _history(3)
    latent.noise = torch.zeros_like(latent.noise)
    w = RidgePolicy().weights(hist, _Ctx(latent, None))
    torch.testing.assert_close((x @ w[:, :, None])[:, :, 0], y)  # interpolates
    expected = (x.mT @ torch.linalg.solve(x @ x.mT, y[:, :, None]))[:, :, 0]  # X^T (X X^T)^-1 y
    torch.testing.assert_close(w, expected)


def test_least_squares_and_averaging_by_formula():
    hist, x, y, latent = _history(8)
    w = LeastSquaresPolicy().weights(hist, _Ctx(latent, None))
    expected = torch.linalg.solve(x.mT @ x, x.mT @ y[:, :, None])[:, :, 0]
    torch.testing.assert_close(w, expected)
    avg = AveragingPolicy().weights(hist, _Ctx(latent, None))
    torch.testing.assert_close(avg, (y[:, :, None] * x).mean(dim=1))


def test_one_gd_step_uses_the_exact_line_search():
    hist, x, y, latent = _history(6)
    w = GradientDescentPolicy(steps=1).weights(hist, _Ctx(latent, None))
    direction = (x.mT @ y[:, :, None])[:, :, 0]  # minus the gradient at w = 0
    eta = (w / direction)[:, 0]
    torch.testing.assert_close(w, eta[:, None] * direction)

    def loss(v):
        return ((x @ v[:, :, None])[:, :, 0] - y).pow(2).sum(1)

    for scale in (0.9, 1.1):
        assert (loss(w) < loss(scale * w)).all()  # the step size minimises along the ray


def test_many_gd_steps_reach_least_squares():
    # A well-conditioned design (singular values in [1, 2]) so steepest descent converges fast.
    hist, x, y, latent = _history(8)
    q = torch.linalg.qr(x).Q  # (B, 8, 5) orthonormal columns
    x_good = q * torch.linspace(1.0, 2.0, 5, dtype=torch.float64)
    hist.x[:, :8] = x_good
    w_many = GradientDescentPolicy(steps=100).weights(hist, _Ctx(latent, None))
    w_ls = LeastSquaresPolicy().weights(hist, _Ctx(latent, None))
    torch.testing.assert_close(w_many, w_ls)


def test_nearest_neighbours_by_hand():
    x = torch.zeros(1, 11, 1, dtype=torch.float64)
    y = torch.zeros(1, 11, dtype=torch.float64)
    x[0, :4, 0] = torch.tensor([0.0, 1.0, 2.0, 10.0])
    y[0, :4] = torch.tensor([1.0, 2.0, 3.0, 100.0])
    hist = History(x=x, y=y, n=4)
    pred = NearestNeighboursPolicy(k=3).predict(hist, _Ctx(None, torch.tensor([[1.2]])))
    assert pred.item() == pytest.approx(2.0)  # neighbours 1.0, 2.0, 0.0


def _losses(n_tasks=2000):
    family = LinearRegression()
    latent = family.sample_latent(n_tasks, stream_generator(0, "eval"))
    out = {}
    for name, policy in family.references().items():
        traj = rollout(
            family, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(3)
        )
        out[name] = -traj.expected_rewards  # (N, T) squared error incl. the noise
    return out


def test_ridge_is_best_and_the_classic_ordering_holds():
    losses = _losses()
    ridge = losses["ridge"]
    for name, loss in losses.items():
        if name in ("oracle", "ridge"):
            continue
        # Paired over the same tasks: ridge's expected loss is never above another
        # predictor's by more than three standard errors, at any position.
        diff = ridge - loss
        se = diff.std(0) / diff.shape[0] ** 0.5
        assert (diff.mean(0) < 3 * se + 1e-9).all(), name
    # With few examples: ridge <= least squares <= averaging (positions 1..3).
    small = slice(1, 4)
    assert (ridge[:, small].mean(0) <= losses["least_squares"][:, small].mean(0) + 1e-9).all()
    assert (losses["least_squares"][:, small].mean(0) < losses["averaging"][:, small].mean(0)).all()
    # The oracle pays only the label noise; the prior-mean predictor pays |w|^2 + noise^2.
    torch.testing.assert_close(losses["oracle"], torch.full_like(ridge, 0.25))
    assert abs(losses["random"].mean().item() - 5.25) < 0.25
    # Learning: at the last position ridge is within 2.5x of the noise floor.
    assert ridge[:, -1].mean().item() < 2.5 * 0.25


def test_shapes_and_feedback():
    family = LinearRegression(dim=3)
    assert family.num_trials == 7 and family.input_dim == 3 + 1 + 1 + 2
    g = torch.Generator().manual_seed(0)
    latent = family.sample_latent(5, g)
    state = family.reset(latent, g)
    x = family.observe(latent, state)
    assert family.oracle_action(latent, state).shape == (5, 1)
    _, out = family.step(latent, state, torch.zeros(5, 1), g)
    f = (latent.w * x).sum(1)
    assert ((out.feedback[:, 0] - f).abs() < 4 * 0.5).all()  # y = w . x + noise
    torch.testing.assert_close(out.expected_reward, -(f**2 + 0.25))


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="dim"):
        LinearRegression(dim=0)
    with pytest.raises(ValueError, match="noise"):
        LinearRegression(noise=-1.0)


def test_pair_feedback_reveals_the_example_and_changes_nothing_else():
    plain, pair = LinearRegression(dim=3), LinearRegression(dim=3, pair_feedback=True)
    assert pair.feedback_dim == 4 and pair.input_dim == 3 + 1 + 4 + 2
    g = torch.Generator().manual_seed(0)
    latent = pair.sample_latent(5, g)
    state = pair.reset(latent, g)
    _, out = pair.step(latent, state, torch.zeros(5, 1), g)
    torch.testing.assert_close(out.feedback[:, 1:], state.x)  # the input the target answers
    # the same draws as without it: targets, rewards and every reference's losses are equal
    latent = plain.sample_latent(300, stream_generator(0, "eval"))
    for name, policy in plain.references().items():
        a, b = (
            rollout(
                f, latent, policy, stream_generator(1, "eval"), torch.Generator().manual_seed(3)
            )
            for f in (plain, pair)
        )
        torch.testing.assert_close(a.expected_rewards, b.expected_rewards, msg=name)
        torch.testing.assert_close(a.feedback, b.feedback[..., :1], msg=name)
    with pytest.raises(ValueError, match="pair_feedback"):
        LinearRegression(pair_feedback="yes")
