"""Volatility analysis of the restless bandit: two learning rates (Behrens et al. 2007).

A Rescorla-Wagner agent (``mesalab.tasks.references.rescorla_wagner``) is fitted by maximum
likelihood to a policy's choices, with its own learning rate and inverse temperature in
stable and in volatile blocks (alpha_s, beta_s, alpha_v, beta_v). The values are carried
across block boundaries (one sequence, one set of values: only the rate at which they move
depends on the block of the trial being learned from), so no block starts from scratch.
An ideal observer learns faster when the world changes faster: the Bayes filter's fitted
alpha_v exceeds its alpha_s. A frozen network whose activations implement a learning
algorithm should show the same split, while its *weights* learned at the outer optimizer's
rate (``training.optimizer.lr``, reported next to the fit): the "two learning rates".

Intervals: Wald intervals from the cluster-robust (sandwich) covariance with tasks as
clusters, which is what a bootstrap over tasks approximates, for the cost of one fit (a
bootstrap that refits 100 resamples took 70 s for 1000 tasks here).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.figures import save_figure
from mesalab.tasks.base import StepOut, TaskFamily, check
from mesalab.tasks.references.rescorla_wagner import BETA_MAX, BETA_MIN, rw_update
from mesalab.tasks.rollout import Policy, StepContext, Trajectory

#: fitted parameters, in the order of the last dim of a parameter tensor
PARAMS = ("alpha_stable", "alpha_volatile", "beta_stable", "beta_volatile")
#: the policies fitted by default: the other references are not delta-rule learners
DEFAULT_POLICIES = ("learner", "bayes_optimal", "rescorla_wagner")
#: 95% quantile of chi-square with 2 degrees of freedom
CHI2_2DF_95 = 5.991464547107979


def block_rw_log_likelihood(
    actions: Tensor, rewards: Tensor, volatile: Tensor, params: Tensor, q0: float = 0.5
) -> Tensor:
    """Per-sequence log-likelihood, (P, N), of (N, T) choices under (P, N or 1, 4) parameters.

    The trial's block (``volatile`` (N, T), 1 = volatile) picks the inverse temperature of
    its choice and the learning rate of the update that follows it.
    """
    p, n, k = params.shape[0], actions.shape[0], 2
    q = torch.full((p, n, k), q0, dtype=params.dtype, device=params.device)
    total = params.new_zeros(p, n)
    for t in range(actions.shape[1]):
        a = actions[:, t].long().expand(p, n)
        vol = volatile[:, t].bool()  # (N,)
        alpha = torch.where(vol, params[..., 1], params[..., 0])  # (P, N)
        beta = torch.where(vol, params[..., 3], params[..., 2])
        logp = torch.log_softmax(beta[..., None] * q, dim=-1)  # (P, N, K)
        total = total + logp.gather(-1, a[..., None])[..., 0]
        q = rw_update(q, a, rewards[:, t].to(q.dtype).expand(p, n), alpha)
    return total


def _to_params(raw: Tensor) -> Tensor:
    """(logit alpha_s, logit alpha_v, log beta_s, log beta_v) -> constrained parameters."""
    alphas = torch.sigmoid(raw[..., :2])
    betas = raw[..., 2:].clamp(math.log(BETA_MIN), math.log(BETA_MAX)).exp()
    return torch.cat([alphas, betas], dim=-1)


def _to_raw(params: Tensor) -> Tensor:
    """Inverse of :func:`_to_params` (alphas clipped away from 0 and 1)."""
    alphas = params[..., :2].clamp(1e-4, 1 - 1e-4)
    return torch.cat([torch.logit(alphas), params[..., 2:].log()], dim=-1)


def _expand(raw: Tensor, tied: bool) -> Tensor:
    """(..., 2) tied (logit alpha, log beta) or (..., 4) raw -> (..., 4) block-wise raw."""
    return raw[..., [0, 0, 1, 1]] if tied else raw


def _nll(acts: Tensor, rews: Tensor, vol: Tensor, raw: Tensor, tied: bool) -> Tensor:
    """Mean negative log-likelihood per task of one raw parameter vector."""
    params = _to_params(_expand(raw, tied))[None, None, :]  # (1, 1, 4)
    return -block_rw_log_likelihood(acts, rews, vol, params).sum() / acts.shape[0]


def _refine(
    acts: Tensor, rews: Tensor, vol: Tensor, start: Tensor, tied: bool, steps: int
) -> Tensor:
    """L-BFGS on the negative log-likelihood from the raw vector ``start``."""
    raw = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([raw], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        nll = _nll(acts, rews, vol, raw, tied)
        nll.backward()
        return nll

    opt.step(closure)
    return raw.detach()


def robust_covariance(acts: Tensor, rews: Tensor, vol: Tensor, raw: Tensor) -> Tensor:
    """Cluster-robust (sandwich) covariance of the raw estimate, tasks as clusters, (4, 4).

    H^-1 (sum_n s_n s_n^T) H^-1 with s_n the score of task n and H the observed
    information: valid when the agent is not a Rescorla-Wagner agent (a network, the Bayes
    filter), and asymptotically what a bootstrap over tasks gives, at the cost of one fit.
    """
    n = acts.shape[0]
    per_task = raw.expand(n, 4).clone().requires_grad_(True)  # (N, 4): one copy per task
    ll = block_rw_log_likelihood(acts, rews, vol, _to_params(per_task)[None])  # (1, N)
    (scores,) = torch.autograd.grad(ll.sum(), per_task)  # (N, 4): task n only moves row n
    hess = torch.autograd.functional.hessian(lambda r: _nll(acts, rews, vol, r, False) * n, raw)
    h_inv = torch.linalg.pinv(hess)
    return h_inv @ (scores.T @ scores) * (n / max(n - 1, 1)) @ h_inv


def fit_block_rates(
    actions: Tensor, rewards: Tensor, volatile: Tensor, grid_size: int = 8, steps: int = 60
) -> dict[str, Any]:
    """Maximum-likelihood block-wise Rescorla-Wagner parameters with 95% intervals.

    First the single-rate model (the one of ``mesalab.tasks.references.fit_rescorla_wagner``: a
    log-spaced grid over (alpha, beta), then L-BFGS); from its estimate, L-BFGS on all four
    block-wise parameters. Intervals are Wald intervals on the unconstrained scale (logit
    alpha, log beta, log of the alpha ratio) from the cluster-robust covariance.
    """
    check(actions.dim() == 2, "actions", tuple(actions.shape), "a (N, T) tensor")
    for name, x in (("rewards", rewards), ("volatile", volatile)):
        check(x.shape == actions.shape, name, tuple(x.shape), "shaped like actions")
    check(bool(volatile.bool().any()), "volatile", "no volatile trial", "both kinds of block")
    check(bool((~volatile.bool()).any()), "volatile", "no stable trial", "both kinds of block")
    acts, rews, vol = actions.long(), rewards.double(), volatile.long()
    a_grid = torch.logspace(-2, 0, grid_size, dtype=torch.float64).clamp(max=0.99)
    b_grid = torch.logspace(-1, 2, grid_size, dtype=torch.float64)
    ga, gb = torch.meshgrid(a_grid, b_grid, indexing="ij")
    cand = torch.stack([ga, ga, gb, gb], dim=-1).reshape(-1, 4)  # (G*G, 4) tied
    with torch.no_grad():
        ll = block_rw_log_likelihood(acts, rews, vol, cand[:, None, :]).sum(dim=1)
    tied = _refine(acts, rews, vol, _to_raw(cand[ll.argmax()])[[0, 2]], True, steps)  # (2,)
    raw = _refine(acts, rews, vol, _expand(tied, True), False, steps)  # (4,)
    cov = robust_covariance(acts, rews, vol, raw)
    se = cov.diagonal().clamp_min(0).sqrt()
    z = 1.959963984540054
    point = _to_params(raw)
    lo, hi = _to_params(raw - z * se), _to_params(raw + z * se)
    # log(alpha_v / alpha_s) = log sigmoid(x_v) - log sigmoid(x_s); d log sigmoid(x) = 1 - sigmoid
    log_ratio = torch.log(point[1] / point[0])
    grad = torch.stack([-(1 - point[0]), 1 - point[1], raw.new_zeros(()), raw.new_zeros(())])
    se_ratio = float((grad @ cov @ grad).clamp_min(0).sqrt())
    with torch.no_grad():
        ll_block = -float(_nll(acts, rews, vol, raw, False)) * acts.shape[0]
        ll_single = -float(_nll(acts, rews, vol, tied, True)) * acts.shape[0]
    single = _to_params(_expand(tied, True))
    ll_random = acts.numel() * math.log(0.5)  # every choice a coin flip
    out: dict[str, Any] = {k: float(v) for k, v in zip(PARAMS, point.tolist(), strict=True)}
    out.update({f"{k}_ci95": [float(lo[i]), float(hi[i])] for i, k in enumerate(PARAMS)})
    out.update(
        alpha_ratio=float(log_ratio.exp()),
        alpha_ratio_ci95=[math.exp(float(log_ratio) + s * z * se_ratio) for s in (-1, 1)],
        alpha_single=float(single[0]),
        beta_single=float(single[2]),
        log_likelihood=ll_block,
        log_likelihood_single=ll_single,
        log_likelihood_random=ll_random,
        # Likelihood-ratio test of the single-rate model against coin flips (chi2, 2 df, 5%):
        # when values do not explain the choices, the learning rates are not identified.
        identified=bool(2 * (ll_single - ll_random) > CHI2_2DF_95),
        num_tasks=int(acts.shape[0]),
    )
    return out


class BlockRescorlaWagner(Policy):
    """A synthetic delta-rule agent told the block: rate and temperature switch with it.

    The known answer for :func:`fit_block_rates` (it reads the block type of the current
    trial from the latent's schedule, which no real agent sees).
    """

    name = "block_rescorla_wagner"

    def __init__(self, alpha_stable: float, alpha_volatile: float, beta: float = 8.0) -> None:
        self.alphas = (float(alpha_stable), float(alpha_volatile))
        self.beta = float(beta)

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Values (B, 2) start at 0.5."""
        return torch.full((batch_size, 2), 0.5, device=generator.device)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Sample from softmax(beta * Q)."""
        probs = torch.softmax(self.beta * pstate, dim=1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0], pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Delta rule with the learning rate of the trial's block."""
        vol = out.info["volatile"].bool()
        alpha = torch.where(vol, self.alphas[1], self.alphas[0]).to(pstate.dtype)
        return rw_update(pstate, action, out.reward, alpha)


def plot_rates(results: dict[str, dict[str, Any]], outer_lr: float | None, path: Path) -> Path:
    """Fitted learning rates per block and policy (log scale), the outer rate as a line."""
    names = list(results)
    fig = Figure(figsize=(1.6 * len(names) + 2.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for j, (key, color) in enumerate((("alpha_stable", "tab:blue"), ("alpha_volatile", "tab:red"))):
        xs = [i + (j - 0.5) * 0.38 for i in range(len(names))]
        ys = [results[n][key] for n in names]
        err = [
            (y - results[n][f"{key}_ci95"][0], results[n][f"{key}_ci95"][1] - y)
            for n, y in zip(names, ys, strict=True)
        ]
        yerr = [[max(e[0], 0.0) for e in err], [max(e[1], 0.0) for e in err]]
        ax.bar(xs, ys, 0.36, yerr=yerr, capsize=3, color=color, label=key.split("_")[1])
    if outer_lr is not None:
        ax.axhline(
            outer_lr, color="black", ls=":", lw=1.2, label=f"outer lr {outer_lr:g} (initial)"
        )
    labels = [n if results[n]["identified"] else f"{n}\n(not identified)" for n in names]
    ax.set_xticks(range(len(names)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("fitted Rescorla-Wagner learning rate")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


class VolatilityAnalysis(FamilyAnalysis):
    """Block-wise learning rates of the learner and the references in ``policies``."""

    name, figure = "volatility", "volatility_rates.png"

    def results(
        self,
        trajs: dict[str, Trajectory],
        family: TaskFamily,
        seed: int,
        outer_lr: float | None = None,
        policies: tuple[str, ...] = DEFAULT_POLICIES,
        **context: Any,
    ) -> tuple[dict[str, Any], Results]:
        """Rescorla-Wagner rates fitted per block type; the run's outer rate beside them."""
        results = {}
        for name in (p for p in policies if p in trajs):
            t = trajs[name]
            check("volatile" in t.info, "trajectory.info", sorted(t.info), "a restless_bandit info")
            results[name] = fit_block_rates(t.actions, t.rewards, t.info["volatile"])
        return {"outer_lr": outer_lr}, results

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """Fitted rates per block (log scale), the outer rate as a line."""
        return plot_rates(results, header["outer_lr"], path)

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Rates per block, their ratio, whether identified, the outer rate."""
        return {
            "policy": policy,
            "alpha_stable": result["alpha_stable"],
            "alpha_volatile": result["alpha_volatile"],
            "ratio": result["alpha_ratio"],
            "ratio_ci95": result["alpha_ratio_ci95"],
            "identified": result["identified"],
            "outer_lr": header["outer_lr"],
        }


analyze = VolatilityAnalysis()
