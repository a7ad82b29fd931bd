"""Inference or a simple controller? Which choice model explains a frozen bandit agent best.

The frozen network's own choices, teacher-forced on its own history, are scored under each
model of :mod:`mesalab.analysis.choice_models` and Rescorla-Wagner. Parameters (the lapse, or
temperature, of every model; k of last-k; rate and temperature of Rescorla-Wagner) are fitted
by maximum likelihood on the first half of the held-out tasks and scored on the second half,
so a model with more parameters gains nothing from fitting noise. Reported per model: the
held-out log-likelihood per choice and its gain over chance (``log K`` nats per choice).

The verdict is the model with the highest held-out likelihood, with a paired bootstrap over
the scored tasks of (a) its gain over chance and (b) its margin over the runner-up. When the
interval of (a) reaches below ``MIN_GAIN`` the verdict is ``none``: no model explains the
choices better than a coin (a random agent). The margin is one of practical equivalence, not
of significance alone: on a random agent the fitted Rescorla-Wagner (alpha ~ 1e-6) beat chance
by 0.0002 nats per choice with an interval above 0, a difference too small to mean anything.
When (b) reaches 0 the runner-up is named as tied.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mesalab.analysis.choice_models import (
    BayesChoice,
    ChoiceModel,
    LastK,
    ThompsonChoice,
    WinStayLoseShift,
    target_probs,
)
from mesalab.studies.policy.resample import bootstrap_weights, percentile_ci
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.references.rescorla_wagner import fit_rescorla_wagner, rw_log_likelihood
from mesalab.tasks.rollout import Trajectory

#: lapse values tried (a fine grid with both ends: 0 = the target alone, 1 = chance)
LAPSES = torch.cat([torch.zeros(1), torch.logspace(-4, 0, 241)]).double()
#: window lengths tried for last-k
K_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)
#: gain over chance (nats per choice) below which a model explains nothing: about 1.4% of the
#: 0.69 nats a coin spends per two-arm choice
MIN_GAIN = 0.01
#: chosen-arm probabilities are floored here inside logs (a lapse of 0 can give 0)
FLOOR = 1e-12


def applies(family: TaskFamily) -> bool:
    """Whether the controller analysis applies: a bandit (discrete arms, scalar 0/1 reward)."""
    return family.kind == "decision" and family.obs_dim == 0 and family.feedback_dim == 1


def lapse_loglik(chosen: Tensor, num_arms: int) -> Tensor:
    """Per-task log-likelihood at every lapse of the grid, (L, N), from target probs (N, T)."""
    p = (1.0 - LAPSES)[:, None, None] * chosen.double()[None] + LAPSES[:, None, None] / num_arms
    return p.clamp(min=FLOOR).log().sum(-1)


def fit_lapse_models(
    models: dict[str, list[tuple[dict[str, Any], ChoiceModel]]],
    family: TaskFamily,
    latent: Any,
    traj: Trajectory,
    fit: Tensor,
) -> dict[str, tuple[dict[str, Any], Tensor]]:
    """(fitted parameters, per-task log-likelihood (N,)) of every lapse model.

    Each model name has candidate variants (last-k: one per k); the lapse and the variant
    with the highest likelihood on the ``fit`` tasks win.
    """
    out = {}
    a = traj.actions.long()[..., None]  # (N, T, 1)
    for name, variants in models.items():
        best = None
        for params, model in variants:
            chosen = target_probs(model, family, latent, traj).gather(-1, a)[..., 0]  # (N, T)
            ll = lapse_loglik(chosen, family.num_actions)  # (L, N)
            i = int(ll[:, fit].sum(1).argmax())
            score = float(ll[i, fit].sum())
            if best is None or score > best[0]:
                best = (score, {**params, "lapse": float(LAPSES[i])}, ll[i])
        out[name] = (best[1], best[2])
    return out


def controller_fits(
    family: TaskFamily, latent: Any, traj: Trajectory
) -> dict[str, tuple[dict[str, Any], Tensor]]:
    """Every model's fitted parameters and per-task log-likelihood, fitted on the first half."""
    check(applies(family), "family", type(family).__name__, "a bandit (discrete arms, 0/1 reward)")
    n = traj.actions.shape[0]
    check(n >= 4, "num_tasks", n, ">= 4 (half to fit, half to score)")
    fit = torch.arange(n) < n // 2
    models = {
        "bayes_optimal": [({}, BayesChoice(family))],
        "thompson": [({}, ThompsonChoice())],
        "win_stay_lose_shift": [({}, WinStayLoseShift())],
        "last_k": [({"k": k}, LastK(k)) for k in K_GRID if k <= traj.actions.shape[1]],
    }
    out = fit_lapse_models(models, family, latent, traj, fit)
    acts, rews = traj.actions.long().cpu(), traj.rewards.cpu()
    alpha, beta = fit_rescorla_wagner(acts[fit], rews[fit], family.num_actions)
    ll = rw_log_likelihood(
        acts, rews, family.num_actions, alpha.double()[None, None], beta.double()[None, None], 0.5
    )[0]
    out["rescorla_wagner"] = ({"alpha": float(alpha), "beta": float(beta)}, ll)
    return out


def controller_analysis(
    family: TaskFamily, latent: Any, traj: Trajectory, seed: int = 0, num_resamples: int = 1000
) -> dict[str, Any]:
    """Held-out likelihood of every model, the best one, and by how much (JSON-ready)."""
    fits = controller_fits(family, latent, traj)
    n, t_len = traj.actions.shape
    score = torch.arange(n) >= n // 2
    choices = int(score.sum()) * t_len
    chance = -math.log(family.num_actions)
    lls = {k: ll[score].cpu() for k, (_, ll) in fits.items()}  # per scored task
    models = {
        k: {
            "params": fits[k][0],
            "ll_per_choice": float(v.sum()) / choices,
            "gain_over_chance": float(v.sum()) / choices - chance,
        }
        for k, v in lls.items()
    }
    ranked = sorted(models, key=lambda k: models[k]["ll_per_choice"], reverse=True)
    best, second = ranked[0], ranked[1]
    w = bootstrap_weights(int(score.sum()), num_resamples, seed)  # (R, N_scored)
    gain = percentile_ci((w @ (lls[best].double() - chance * t_len)) / choices)
    margin = percentile_ci((w @ (lls[best] - lls[second]).double()) / choices)
    verdict = best if float(gain[0]) > MIN_GAIN else "none"
    return {
        "num_fit_tasks": n - int(score.sum()),
        "num_scored_tasks": int(score.sum()),
        "chance_ll_per_choice": chance,
        "models": models,
        "ranking": ranked,
        "best": verdict,
        "min_gain": MIN_GAIN,
        "best_gain_over_chance_ci95": gain.tolist(),
        "runner_up": second,
        "margin": models[best]["ll_per_choice"] - models[second]["ll_per_choice"],
        "margin_ci95": margin.tolist(),
        "tied_with_runner_up": bool(float(margin[0]) <= 0),
    }


def controller_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model, best first."""
    return [
        {
            "model": k,
            "ll_per_choice": result["models"][k]["ll_per_choice"],
            "gain_over_chance": result["models"][k]["gain_over_chance"],
            "params": ", ".join(f"{p}={v:.3g}" for p, v in result["models"][k]["params"].items()),
        }
        for k in result["ranking"]
    ]
