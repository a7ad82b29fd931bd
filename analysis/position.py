"""Curves by position within the episode (loss or reward), for every policy on the same tasks.

The prediction families are analysed by how the loss falls with the number of in-context
examples; the remaining families by their reward curve. Every policy was rolled out on the
same tasks with the same environment noise, so one set of bootstrap weights over tasks is
used for all of them and ratios between policies are paired.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from torch import Tensor

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.figures import save_figure
from mesalab.studies.policy.resample import bootstrap_weights, mean_with_ci, ratio_with_ci
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.rollout import Trajectory


def per_task_values(traj: Trajectory, loss: bool) -> Tensor:
    """(N, T) expected loss (= -expected reward) or expected reward, float64."""
    values = traj.expected_rewards.double()
    return -values if loss else values


def position_analysis(
    trajs: dict[str, Trajectory],
    loss: bool,
    reference: str | None = None,
    num_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per policy: the curve by position with 95% bands, its last point and its mean.

    With ``reference``, also each policy's last-position value and mean divided by the
    reference's (paired bootstrap interval of the ratio of means).
    """
    check(len(trajs) > 0, "trajs", len(trajs), "at least one trajectory")
    if reference is not None:
        check(reference in trajs, "reference", reference, f"one of {sorted(trajs)}")
    values = {k: per_task_values(t, loss) for k, t in trajs.items()}
    n = next(iter(values.values())).shape[0]
    for k, v in values.items():
        check(v.shape[0] == n, f"trajs[{k!r}]", f"{v.shape[0]} tasks", f"{n} tasks (same tasks)")
    w = bootstrap_weights(n, num_resamples, seed)
    out: dict[str, dict[str, Any]] = {}
    for name, v in values.items():
        curve, _, ci = mean_with_ci(v, w)  # (T,), (T, 2)
        mean, _, mean_ci = mean_with_ci(v.mean(dim=1), w)
        res = {
            "curve": curve.tolist(),
            "curve_ci95": ci.tolist(),
            "last": float(curve[-1]),
            "last_ci95": ci[-1].tolist(),
            "mean": float(mean),
            "mean_ci95": mean_ci.tolist(),
        }
        if reference is not None:
            ref = values[reference]
            res["last_ratio"], res["last_ratio_ci95"] = ratio_with_ci(v[:, -1], ref[:, -1], w)
            res["mean_ratio"], res["mean_ratio_ci95"] = ratio_with_ci(
                v.mean(dim=1), ref.mean(dim=1), w
            )
        out[name] = res
    return out


def plot_position(
    results: dict[str, dict[str, Any]],
    path: Path,
    ylabel: str,
    xlabel: str = "trial",
    start: int = 1,
    logy: bool = False,
) -> Path:
    """Curves with 95% bands by position (x from ``start``); the learner on top in black."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    order = [k for k in results if k != "learner"] + (["learner"] if "learner" in results else [])
    for name in order:
        res = results[name]
        xs = list(range(start, start + len(res["curve"])))
        lo, hi = zip(*res["curve_ci95"], strict=True)
        style = {"color": "black", "lw": 2.2} if name == "learner" else {"lw": 1.2, "ls": "--"}
        line = ax.plot(xs, res["curve"], label=name, **style)[0]
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


class CurveAnalysis(FamilyAnalysis):
    """Fallback for families without their own analysis: the curve by trial against the ideal."""

    name, figure = "curve", "curve.png"

    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """Loss (prediction) or expected reward (decision) by trial, against the ideal."""
        loss = family.kind == "prediction"
        ideal = family.ideal_reference if family.ideal_reference in trajs else None
        results = position_analysis(trajs, loss, reference=ideal, seed=seed)
        return {"value": "loss" if loss else "expected_reward", "reference": ideal}, results

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """The curves by trial."""
        label = "loss" if header["value"] == "loss" else "expected reward"
        return plot_position(results, path, label)

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Mean, last, its interval."""
        keys = ("mean", "last", "last_ci95")
        return {"policy": policy, **{k: result[k] for k in keys}}


analyze = CurveAnalysis()
