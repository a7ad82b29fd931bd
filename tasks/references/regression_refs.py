"""Reference predictors of in-context linear regression, acting from the episode's history only.

Each keeps the (x, y) pairs seen so far in a (B, T, d) buffer whose unfilled rows are zeros;
zero rows change neither X^T X nor X^T y nor a min-norm solution, so every estimator runs on
the whole buffer. With no example yet every predictor says 0, the prior mean. Linear algebra
runs in float64 (least squares at n = d is ill-conditioned).

Ridge reads the prior's constants (noise, w_scale) from the latent: they are the same for
every task of a prior, the structure a Bayes-optimal predictor knows, not the task's w.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


@dataclass
class History:
    """The examples seen so far."""

    x: Tensor  # (B, T, d) float64, rows >= n are zero
    y: Tensor  # (B, T) float64
    n: int


def min_norm_lstsq(x: Tensor, y: Tensor) -> Tensor:
    """Minimum-norm least-squares weights, (B, d), for x (B, N, d) and y (B, N)."""
    return (torch.linalg.pinv(x) @ y[:, :, None])[:, :, 0]


def ridge_weights(x: Tensor, y: Tensor, lam: Tensor) -> Tensor:
    """argmin ||Xw - y||^2 + lam ||w||^2 per row, (B, d); lam (B,) may be 0.

    Solved as the min-norm least squares of X stacked on sqrt(lam) I, which is the ridge
    solution for lam > 0 and its limit, the min-norm interpolant, for lam = 0.
    """
    b, _, d = x.shape
    eye = repeat(torch.eye(d, dtype=x.dtype, device=x.device), "i j -> b i j", b=b)  # (B, d, d)
    x_aug = torch.cat([x, lam.sqrt()[:, None, None] * eye], dim=1)  # (B, N + d, d)
    y_aug = torch.cat([y, y.new_zeros(b, d)], dim=1)  # (B, N + d)
    return min_norm_lstsq(x_aug, y_aug)


class HistoryRegressor(Policy):
    """Base class: store the examples, predict x . w_hat with the subclass's estimator."""

    name = "history_regressor"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> History:
        """An empty buffer of num_trials examples."""
        dev, d, t = generator.device, family.obs_dim, family.num_trials
        return History(
            x=torch.zeros(batch_size, t, d, dtype=torch.float64, device=dev),
            y=torch.zeros(batch_size, t, dtype=torch.float64, device=dev),
            n=0,
        )

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """Estimated weights (B, d) from the history."""
        raise NotImplementedError

    def predict(self, hist: History, ctx: StepContext) -> Tensor:
        """Prediction (B,) for the current input."""
        return (self.weights(hist, ctx) * ctx.obs.double()).sum(dim=1)

    def act(
        self, pstate: History, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, History]:
        """Predict, (B, 1) float32."""
        if pstate.n == 0:
            return ctx.obs.new_zeros(ctx.obs.shape[0], 1), pstate
        return self.predict(pstate, ctx).float()[:, None], pstate

    def update(self, pstate: History, ctx: StepContext, action: Tensor, out: StepOut) -> History:
        """Append (x_t, y_t)."""
        if pstate.n >= pstate.x.shape[1]:
            return pstate  # past the buffer (longer rollouts than num_trials): stop learning
        x, y = pstate.x.clone(), pstate.y.clone()
        x[:, pstate.n] = ctx.obs.double()
        y[:, pstate.n] = out.feedback[:, 0].double()
        return History(x=x, y=y, n=pstate.n + 1)


class ZeroPolicy(HistoryRegressor):
    """The uninformed predictor: always the prior mean 0 (the prediction family's "random")."""

    name = "zero"

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """No learning: w_hat = 0."""
        return hist.x.new_zeros(hist.x.shape[0], hist.x.shape[2])


class LeastSquaresPolicy(HistoryRegressor):
    """Ordinary least squares, min-norm when there are fewer examples than dimensions."""

    name = "least_squares"

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """pinv(X) y."""
        return min_norm_lstsq(hist.x, hist.y)


class RidgePolicy(HistoryRegressor):
    """The posterior mean of w under w ~ N(0, s^2 I) and noise sigma: lambda = sigma^2 / s^2.

    This is the Bayes-optimal predictor for squared error under the family's prior.
    """

    name = "ridge"

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """(X^T X + lambda I)^-1 X^T y."""
        lam = (ctx.latent.noise.double() / ctx.latent.w_scale.double()) ** 2
        return ridge_weights(hist.x, hist.y, lam)

    def posterior_mean(self, pstate: History, ctx: StepContext) -> Tensor:
        """The posterior mean of w (the probes' target), (B, d); the prior mean 0 at first."""
        if pstate.n == 0:
            return pstate.x.new_zeros(pstate.x.shape[0], pstate.x.shape[2])
        return self.weights(pstate, ctx)


class GradientDescentPolicy(HistoryRegressor):
    """``steps`` steps of gradient descent on 1/2 ||Xw - y||^2 from w = 0.

    The step size is found by exact line search at every step (for a quadratic,
    eta = g^T g / ||X g||^2), a per-task version of the tuned learning rate that von Oswald
    et al. (2022) compare trained transformers with. One step from zero gives w = eta X^T y.
    """

    name = "gd"

    def __init__(self, steps: int = 1) -> None:
        self.steps = steps
        self.name = f"gd_{steps}"

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """Line-searched steepest descent from zero."""
        x, y = hist.x, hist.y
        w = x.new_zeros(x.shape[0], x.shape[2])
        for _ in range(self.steps):
            resid = (x @ w[:, :, None])[:, :, 0] - y  # (B, T)
            g = (rearrange(x, "b t d -> b d t") @ resid[:, :, None])[:, :, 0]  # (B, d)
            xg = (x @ g[:, :, None])[:, :, 0]  # (B, T)
            num, den = (g * g).sum(dim=1), (xg * xg).sum(dim=1)
            eta = torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))
            w = w - eta[:, None] * g
        return w


class NearestNeighboursPolicy(HistoryRegressor):
    """Mean label of the k nearest seen inputs (all of them while fewer than k)."""

    name = "knn"

    def __init__(self, k: int = 3) -> None:
        self.k = k
        self.name = f"knn_{k}"

    def predict(self, hist: History, ctx: StepContext) -> Tensor:
        """Average y over the k nearest x."""
        n = hist.n
        dist = (hist.x[:, :n] - ctx.obs.double()[:, None, :]).norm(dim=2)  # (B, n)
        idx = dist.topk(min(self.k, n), dim=1, largest=False).indices
        return hist.y[:, :n].gather(1, idx).mean(dim=1)


class AveragingPolicy(HistoryRegressor):
    """Garg et al.'s averaging estimator: w_hat = mean_i y_i x_i."""

    name = "averaging"

    def weights(self, hist: History, ctx: StepContext) -> Tensor:
        """(1/n) X^T y."""
        x_t = rearrange(hist.x, "b t d -> b d t")
        return (x_t @ hist.y[:, :, None])[:, :, 0] / hist.n  # (B, d)
