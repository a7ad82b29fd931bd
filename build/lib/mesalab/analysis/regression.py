"""In-context linear regression: loss by number of in-context examples (Garg et al. 2022).

The prediction at position t (0-based) is made after t (x, y) examples of the episode, so
the curve's x-axis is the number of examples. The loss is the expected squared error,
``-expected_reward`` of the family (label noise included: ridge, the Bayes-optimal
predictor, cannot go below noise^2). Every policy is compared with ridge: the ratio of mean
losses at the last position (the issue's bar: a trained transformer within 1.3x of ridge)
and over the whole episode, with paired bootstrap intervals over tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesalab.analysis.position import plot_position, position_analysis
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.rollout import Trajectory

#: the Bayes-optimal predictor under the family's prior, the yardstick of every ratio
REFERENCE = "ridge"


def analyze(
    trajs: dict[str, Trajectory],
    family: TaskFamily,
    out_dir: Path | None = None,
    seed: int = 0,
    **context: Any,
) -> dict[str, Any]:
    """Loss by number of examples for every policy, ratios to ridge (+ figure)."""
    ref = REFERENCE if REFERENCE in trajs else None
    results = position_analysis(trajs, loss=True, reference=ref, seed=seed)
    out: dict[str, Any] = {
        "analysis": "linear_regression",
        "reference": ref,
        "num_examples": list(range(len(next(iter(results.values()))["curve"]))),
        "policies": results,
        "figures": [],
    }
    if out_dir is not None:
        path = Path(out_dir) / "regression_loss.png"
        fig = plot_position(results, path, "squared error", "in-context examples", 0, logy=True)
        out["figures"].append(fig.name)
    out["table"] = [
        {
            "policy": k,
            "last_loss": r["last"],
            "last_ci95": r["last_ci95"],
            "last_vs_ridge": r.get("last_ratio"),
            "last_vs_ridge_ci95": r.get("last_ratio_ci95"),
            "mean_vs_ridge": r.get("mean_ratio"),
        }
        for k, r in results.items()
    ]
    return out
