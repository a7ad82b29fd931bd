"""Stay analysis of the two-step task (Daw et al. 2011; Akam et al. 2015).

Whether an agent repeats its first-stage choice on trial t + 1 ("stay") is tabulated by the
outcome of trial t: rewarded or not, and common or rare transition. A model-free agent
repeats rewarded choices whatever the transition (a main effect of reward); a model-based
agent repeats a rewarded choice after a common transition but switches after a rare one
(a reward x transition interaction). The **model-based index** is the interaction
coefficient of a logistic regression of stay on reward, transition and their interaction
(predictors coded +1 / -1, so it is in log-odds units); the model-free index is the reward
coefficient.

Akam et al. (2015) showed that a model-free agent that performs well also shows a positive
interaction in the raw analysis: after a common transition a rewarded choice is usually the
*correct* one (it leads commonly to the currently good state) and a correct choice is
repeated more often whatever happened. Their remedy is a further predictor, ``correct``
(+1 when the choice on trial t led commonly to the good state of trial t); here it left a
residual interaction for the ``model_free`` reference, so the corrected model also has
``reward x correct``. Then it is exact for a model-free agent: given the choice and the good
state, the transition and the reward of trial t are independent of everything the agent knew
before, so its stay probability depends on (reward, correct) only, which the corrected model
spans, and the interaction coefficient is 0 in expectation. Both indices are reported:
``raw`` (reward, transition, interaction) and ``corrected`` (plus correct, reward x correct).

Intervals are percentile bootstraps over tasks (episodes are the independent units). Every
predictor is binary, so the regression depends on the data only through stay counts in 8
cells (reward x transition x correct); a resample reweights per-task counts, and each fit is
a few Newton steps on 8 binomial cells. A weak Gaussian prior (``l2``, precision on each
coefficient) keeps the fit finite when a deterministic agent always (or never) stays in a
cell; with thousands of trials it moves nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.figures import save_figure
from mesalab.studies.policy.resample import bootstrap_weights, percentile_ci
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.rollout import Trajectory

#: the four bars, in plotting order: (name, rewarded, common)
BARS = (
    ("rewarded_common", 1, 1),
    ("rewarded_rare", 1, 0),
    ("unrewarded_common", 0, 1),
    ("unrewarded_rare", 0, 0),
)
COEFS_RAW = ("intercept", "reward", "transition", "interaction")
COEFS_CORRECTED = (*COEFS_RAW, "correct", "reward_x_correct")


def stay_counts(traj: Trajectory) -> Tensor:
    """Per-task [trials, stays] in 8 cells (index 4 rewarded + 2 common + correct), (N, 8, 2).

    Uses every pair of consecutive trials (t, t + 1) of each episode.
    """
    for key in ("common", "good_state"):
        check(key in traj.info, "trajectory.info", sorted(traj.info), f"a two_step info with {key}")
    a = traj.actions.long()  # (N, T)
    check(a.dim() == 2 and a.shape[1] >= 2, "actions", tuple(a.shape), "(N, T) with T >= 2")
    stay = (a[:, 1:] == a[:, :-1]).double()  # (N, T-1)
    rewarded = (traj.rewards[:, :-1] > 0).long()
    common = traj.info["common"][:, :-1].long()
    # Action a leads commonly to state a, so the choice was correct iff a == good state.
    correct = (a[:, :-1] == traj.info["good_state"][:, :-1].long()).long()
    cell = 4 * rewarded + 2 * common + correct  # (N, T-1)
    n = a.shape[0]
    trials = torch.zeros(n, 8, dtype=torch.float64).scatter_add_(1, cell, torch.ones_like(stay))
    stays = torch.zeros(n, 8, dtype=torch.float64).scatter_add_(1, cell, stay)
    return torch.stack([trials, stays], dim=2)  # (N, 8, 2)


def design(corrected: bool) -> Tensor:
    """Predictors of the 8 cells coded +1 / -1: (8, 4), or (8, 6) with the correct terms."""
    idx = torch.arange(8)
    r, c, k = (2.0 * ((idx >> s) & 1) - 1.0 for s in (2, 1, 0))
    cols = [torch.ones(8), r, c, r * c] + ([k, r * k] if corrected else [])
    return torch.stack(cols, dim=1).double()


def fit_logistic(
    trials: Tensor, stays: Tensor, x: Tensor, l2: float = 1.0, iters: int = 30
) -> Tensor:
    """Penalised logistic regression on binomial cells, batched over rows: (R, C) -> (R, K).

    Newton's method on the concave penalised log-likelihood sum_c [s_c eta_c - n_c log(1 +
    e^eta_c)] - l2 / 2 |beta|^2, with eta = x beta; the penalty makes the Hessian negative
    definite, so the iteration converges from zero.
    """
    r, k = trials.shape[0], x.shape[1]
    beta = trials.new_zeros(r, k)
    eye = torch.eye(k, dtype=x.dtype)
    for _ in range(iters):
        p = torch.sigmoid(beta @ x.T)  # (R, C)
        grad = (stays - trials * p) @ x - l2 * beta  # (R, K)
        w = trials * p * (1 - p)  # (R, C)
        hess = torch.einsum("rc,ck,cj->rkj", w, x, x) + l2 * eye  # (R, K, K) negated Hessian
        step = torch.linalg.solve(hess, grad[..., None])[..., 0]
        beta = beta + step
        if float(step.abs().max()) < 1e-10:
            break
    return beta


def _json(x: float) -> float | None:
    """NaN (an empty cell) as None, so the result stays valid JSON."""
    return None if x != x else float(x)


def stay_analysis(
    traj: Trajectory, num_resamples: int = 1000, seed: int = 0, l2: float = 1.0
) -> dict[str, Any]:
    """Stay probabilities of the four bars and the raw and corrected regressions, with CIs."""
    counts = stay_counts(traj)  # (N, 8, 2)
    w = bootstrap_weights(counts.shape[0], num_resamples, seed)  # (R, N)
    total = counts.sum(dim=0)  # (8, 2)
    boot = torch.einsum("rn,nck->rck", w, counts)  # (R, 8, 2)
    out: dict[str, Any] = {"num_tasks": int(counts.shape[0]), "num_pairs": int(total[:, 0].sum())}
    stay = {}
    for name, rew, com in BARS:
        cells = [4 * rew + 2 * com, 4 * rew + 2 * com + 1]  # correct and incorrect
        n, s = total[cells].sum(dim=0)
        bn, bs = boot[:, cells].sum(dim=1).unbind(dim=1)  # (R,) each
        ci = percentile_ci(bs / bn) if bool((bn > 0).all()) else torch.full((2,), float("nan"))
        p = _json(float(s / n)) if n > 0 else None
        stay[name] = {"p": p, "ci95": [_json(v) for v in ci.tolist()], "n": int(n)}
    out["stay"] = stay
    for label, names in (("raw", COEFS_RAW), ("corrected", COEFS_CORRECTED)):
        x = design(label == "corrected")
        point = fit_logistic(total[None, :, 0], total[None, :, 1], x, l2)[0]
        ci = percentile_ci(fit_logistic(boot[..., 0], boot[..., 1], x, l2))  # (K, 2)
        out[label] = {
            "coef": dict(zip(names, point.tolist(), strict=True)),
            "ci95": dict(zip(names, ci.tolist(), strict=True)),
        }
    out["model_based_index"] = out["raw"]["coef"]["interaction"]
    out["model_based_index_ci95"] = out["raw"]["ci95"]["interaction"]
    out["model_based_index_corrected"] = out["corrected"]["coef"]["interaction"]
    out["model_based_index_corrected_ci95"] = out["corrected"]["ci95"]["interaction"]
    out["model_free_index"] = out["corrected"]["coef"]["reward"]
    out["model_free_index_ci95"] = out["corrected"]["ci95"]["reward"]
    return out


def plot_stays(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """The four stay bars (common / rare within rewarded / unrewarded), a panel per policy."""
    names = list(results)
    fig = Figure(figsize=(2.3 * len(names) + 0.5, 3.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False, sharey=True)[0]
    for ax, name in zip(axes, names, strict=True):
        res = results[name]["stay"]
        for j, (kind, color) in enumerate((("common", "tab:blue"), ("rare", "tab:red"))):
            xs, ys, err = [], [], []
            for i, outcome in enumerate(("rewarded", "unrewarded")):
                cell = res[f"{outcome}_{kind}"]
                if cell["p"] is None:
                    continue
                lo, hi = (cell["p"] if v is None else v for v in cell["ci95"])
                xs.append(i + (j - 0.5) * 0.38)
                ys.append(cell["p"])
                err.append((cell["p"] - lo, hi - cell["p"]))
            yerr = list(zip(*err, strict=True)) if err else None
            ax.bar(xs, ys, 0.36, yerr=yerr, capsize=3, color=color, label=kind)
        ax.set_xticks([0, 1], ["rewarded", "unrewarded"])
        ax.set_ylim(0, 1.05)
        mb = results[name]["model_based_index_corrected"]
        ax.set_title(f"{name}\nMB index {results[name]['model_based_index']:.2f} (corr. {mb:.2f})")
        ax.title.set_fontsize(8)
    axes[0].set_ylabel("P(stay)")
    axes[0].legend(fontsize=7, title="transition", title_fontsize=7)
    return save_figure(fig, path)


class TwoStepAnalysis(FamilyAnalysis):
    """Stay analysis of every policy; the stay-bar figure."""

    name, figure = "two_step", "two_step_stay.png"

    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """Stay probabilities and indices of every policy that responds to outcomes."""
        skip = {"oracle", "random"}  # the oracle ignores outcomes; random stays at 0.5 everywhere
        return {}, {k: stay_analysis(t, seed=seed) for k, t in trajs.items() if k not in skip}

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """The four stay bars per policy."""
        return plot_stays(results, path)

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Model-based (raw and corrected) and model-free indices."""
        return {
            "policy": policy,
            "mb_index": result["model_based_index"],
            "mb_ci95": result["model_based_index_ci95"],
            "mb_corrected": result["model_based_index_corrected"],
            "mb_corrected_ci95": result["model_based_index_corrected_ci95"],
            "mf_index": result["model_free_index"],
        }


analyze = TwoStepAnalysis()
