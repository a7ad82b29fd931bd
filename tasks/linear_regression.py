"""In-context linear regression (Garg et al. 2022), a prediction family.

A task is a weight vector w ~ N(0, w_scale^2 I) in d dimensions. Every trial shows an input
x_t ~ N(0, I) (the observation); the action is the prediction y_hat_t, shape (B, 1)
(num_actions = 1); the step then reveals y_t = w . x_t + noise * eps_t (the feedback, shown
at the next step by ``build_inputs``). The sampled reward is -(y_hat - y)^2; the expected
reward is -((y_hat - w . x)^2 + noise^2), so ``-expected_reward`` is the squared-error loss
curve with the label noise in it, and the oracle (y_hat = w . x, the supervised target) gets
-noise^2. An episode has 2d + 1 trials by default: the last prediction uses 2d examples.

``pair_feedback=True`` reveals (y_t, x_t) rather than y_t alone, so each step's input holds the
whole previous example next to the new input (the bandits' inputs hold the whole previous
trial too). Without it a learner must carry x_{t-1} one step to pair it with y_{t-1}.

The default label noise is 0.5 (Garg et al. used none). With noise, ridge (the Bayes-optimal
predictor) differs visibly from least squares, whose loss peaks where the number of examples
equals d; and the ideal loss stays far from 0, so "within 1.3x of ridge" is a bar a learner
can meet without fitting w to several decimals. Noise and prior scale are constants of the
prior, stored in the latent, so the references (ridge's lambda) know them.

Priors: ``train`` (w_scale 1, the constructor's noise); ``large_w`` (w_scale 2);
``noisy`` (noise 1.0); ``noiseless`` (noise 0: ridge becomes the min-norm interpolant).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import OraclePolicy, Policy, State, StepOut, TaskFamily, check
from mesalab.tasks.references.regression_refs import (
    AveragingPolicy,
    GradientDescentPolicy,
    LeastSquaresPolicy,
    NearestNeighboursPolicy,
    RidgePolicy,
    ZeroPolicy,
)

#: the smallest label-noise variance a discrete posterior assumes (noiseless tasks)
VAR_FLOOR = 1e-6


@dataclass
class RegressionLatent:
    """Weights of the task, plus the prior's constants."""

    w: Tensor  # (B, d)
    noise: Tensor  # (B,) label noise standard deviation
    w_scale: Tensor  # (B,) prior standard deviation of every weight


@dataclass
class RegressionState(State):
    """Trial index and the input of the current trial."""

    x: Tensor  # (B, d)


class LinearRegression(TaskFamily):
    """Predict y = w . x + noise from the (x, y) pairs seen so far in the episode."""

    name = "linear_regression"
    analysis = "mesalab.analysis.regression.RegressionAnalysis"
    kind = "prediction"
    action_space = "real"
    priors = ("train", "large_w", "noisy", "noiseless")
    action_free_dynamics = True  # the inputs are drawn whatever the prediction
    ideal_reference = "ridge"

    def __init__(
        self,
        dim: int = 5,
        num_trials: int | None = None,
        noise: float = 0.5,
        pair_feedback: bool = False,
    ) -> None:
        check(isinstance(dim, int) and dim >= 1, "dim", dim, "an int >= 1")
        check(isinstance(pair_feedback, bool), "pair_feedback", pair_feedback, "true or false")
        num_trials = 2 * dim + 1 if num_trials is None else num_trials
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        check(noise >= 0, "noise", noise, "a float >= 0")
        self.dim = dim
        self.num_trials = num_trials
        self.num_actions = 1
        self.obs_dim = dim
        self.pair_feedback = pair_feedback  # feedback (y_t, x_t): see the module docstring
        self.feedback_dim = 1 + dim if pair_feedback else 1
        self.noise = float(noise)
        # The range a normalized gymnasium action maps onto: 10 standard deviations of the
        # noiseless target w . x under the widest prior (large_w: sd 2 sqrt(dim)).
        bound = 10.0 * 2.0 * dim**0.5
        self.action_bounds = (-bound, bound)

    def prior_constants(self, prior: str) -> tuple[float, float]:
        """(label noise, weight scale) of the named prior."""
        self.check_prior(prior)
        noise = {"noisy": 1.0, "noiseless": 0.0}.get(prior, self.noise)
        return noise, 2.0 if prior == "large_w" else 1.0

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> RegressionLatent:
        """w ~ N(0, w_scale^2 I)."""
        noise, scale = self.prior_constants(prior)
        dev = self.device_of(generator)
        w = scale * torch.randn(n, self.dim, generator=generator, device=dev)
        return RegressionLatent(
            w=w,
            noise=torch.full((n,), noise, device=dev),
            w_scale=torch.full((n,), scale, device=dev),
        )

    def reset(
        self, latent: RegressionLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> RegressionState:
        """Draw the first input."""
        b = latent.w.shape[0]
        if t is None:
            t = torch.zeros(b, dtype=torch.long, device=latent.w.device)
        x = torch.randn(b, self.dim, generator=generator, device=latent.w.device)
        return RegressionState(t=t, x=x)

    def observe(self, latent: RegressionLatent, state: RegressionState) -> Tensor:
        """The current input x_t, (B, d)."""
        return state.x

    def step(
        self,
        latent: RegressionLatent,
        state: RegressionState,
        action: Tensor,
        generator: torch.Generator,
    ) -> tuple[RegressionState, StepOut]:
        """Reveal y_t; score the prediction; draw the next input."""
        b = latent.w.shape[0]
        y_hat = action.float().reshape(b)  # (B,) from (B,) or (B, 1); reshape checks the size
        # Label noise and the next input are drawn whatever the prediction was.
        eps = torch.randn(b, generator=generator, device=latent.w.device)
        x_next = torch.randn(b, self.dim, generator=generator, device=latent.w.device)
        f = (latent.w * state.x).sum(dim=1)
        y = f + latent.noise * eps
        out = StepOut(
            reward=-((y_hat - y) ** 2),
            expected_reward=-((y_hat - f) ** 2 + latent.noise**2),
            optimal_expected_reward=-(latent.noise**2),
            # the target first (references and the supervised loss read column 0)
            feedback=torch.cat([y[:, None], state.x], dim=1) if self.pair_feedback else y[:, None],
        )
        return RegressionState(t=state.t + 1, x=x_next), out

    def oracle_action(self, latent: RegressionLatent, state: RegressionState) -> Tensor:
        """The noiseless target w . x, (B, 1)."""
        return (latent.w * state.x).sum(dim=1, keepdim=True)

    # --- discrete-posterior observer ---------------------------------------------------------
    def log_likelihood(
        self, candidates: RegressionLatent, state: RegressionState, action: Tensor, out: StepOut
    ) -> Tensor:
        """Gaussian log-likelihood of y_t under each candidate's w and noise, (B, K).

        A noiseless candidate gets a variance floor (``VAR_FLOOR``), so the posterior then
        concentrates on the candidates nearest to the data instead of failing.
        """
        x, w = state.x.double(), candidates.w.double()
        mean = x @ rearrange(w, "k d -> d k")  # (B, d) @ (d, K) -> (B, K)
        var = (candidates.noise.double() ** 2).clamp_min(VAR_FLOOR)  # (K,)
        y = out.feedback[:, :1].double()  # (B, 1)
        return -0.5 * ((y - mean) ** 2 / var + torch.log(2 * torch.pi * var))

    def mixture_mean(
        self, candidates: RegressionLatent, weights: Tensor, state: RegressionState
    ) -> Tensor:
        """Posterior mean prediction: the posterior mean of w dotted with x_t, (B, 1)."""
        w_mean = weights.double() @ candidates.w.double()  # (B, d)
        return (w_mean * state.x.double()).sum(dim=1, keepdim=True)

    def prior_observer(self) -> Policy:
        """Ridge: the posterior mean of w under the Gaussian prior, Bayes-optimal."""

        obs = RidgePolicy()
        obs.name = "family_prior"
        return obs

    def references(self) -> dict:
        """Oracle, prior mean ("random"), least squares, ridge, GD, kNN, averaging."""

        return {
            "oracle": OraclePolicy(),
            "random": ZeroPolicy(),
            "least_squares": LeastSquaresPolicy(),
            "ridge": RidgePolicy(),
            "gd_1": GradientDescentPolicy(steps=1),
            "gd_5": GradientDescentPolicy(steps=5),
            "knn_3": NearestNeighboursPolicy(k=3),
            "averaging": AveragingPolicy(),
        }
