"""Harlow's learning-set analysis: accuracy by trial within the episode (Harlow 1949).

Each episode shows two objects never seen before, one always rewarded. Trial 1 can only be a
guess (accuracy 0.5 for any policy that has not seen the objects); an agent that has
"learned to learn" is near perfect from trial 2 on, because one outcome identifies the
rewarded object. The signature is the **jump**: mean accuracy on trials 2..T minus accuracy
on trial 1, per task, with a bootstrap interval over tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.figures import save_figure
from mesalab.studies.policy.resample import bootstrap_weights, mean_with_ci
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.rollout import Trajectory


def accuracy_analysis(traj: Trajectory, num_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy by trial (with intervals), the first-trial accuracy, the later mean, the jump."""
    acc = traj.rewards.double()  # (N, T): reward 1 iff the rewarded object was picked
    check(acc.dim() == 2 and acc.shape[1] >= 2, "rewards", tuple(acc.shape), "(N, T), T >= 2")
    w = bootstrap_weights(acc.shape[0], num_resamples, seed)
    curve, _, curve_ci = mean_with_ci(acc, w)  # (T,), (T, 2)
    later = acc[:, 1:].mean(dim=1)  # (N,)
    jump, _, jump_ci = mean_with_ci(later - acc[:, 0], w)
    first, _, first_ci = mean_with_ci(acc[:, 0], w)
    rest, _, rest_ci = mean_with_ci(later, w)
    return {
        "num_tasks": int(acc.shape[0]),
        "accuracy_by_trial": curve.tolist(),
        "accuracy_by_trial_ci95": curve_ci.tolist(),
        "trial1": float(first),
        "trial1_ci95": first_ci.tolist(),
        "later": float(rest),
        "later_ci95": rest_ci.tolist(),
        "jump": float(jump),
        "jump_ci95": jump_ci.tolist(),
    }


def plot_accuracy(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Accuracy by trial with 95% bands; the learner drawn on top in black."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    order = [k for k in results if k != "learner"] + (["learner"] if "learner" in results else [])
    for name in order:
        res = results[name]
        xs = list(range(1, len(res["accuracy_by_trial"]) + 1))
        lo, hi = zip(*res["accuracy_by_trial_ci95"], strict=True)
        style = {"color": "black", "lw": 2.2} if name == "learner" else {"lw": 1.2, "ls": "--"}
        line = ax.plot(xs, res["accuracy_by_trial"], marker="o", ms=3, label=name, **style)[0]
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("trial within episode")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


class HarlowAnalysis(FamilyAnalysis):
    """Accuracy by trial and the jump after trial 1 for every policy (+ figure)."""

    name, figure = "harlow", "harlow_accuracy.png"

    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """Accuracy analysis of every policy."""
        return {}, {k: accuracy_analysis(t, seed=seed) for k, t in trajs.items()}

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """Accuracy by trial."""
        return plot_accuracy(results, path)

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Trial 1, later trials, the jump."""
        keys = ("trial1", "later", "jump", "jump_ci95")
        return {"policy": policy, **{k: result[k] for k in keys}}


analyze = HarlowAnalysis()
