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

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.position import plot_position, position_analysis
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.rollout import Trajectory

#: the Bayes-optimal predictor under the family's prior, the yardstick of every ratio
REFERENCE = "ridge"


class RegressionAnalysis(FamilyAnalysis):
    """Loss by number of examples for every policy, ratios to ridge (+ figure)."""

    name, figure = "linear_regression", "regression_loss.png"

    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """Position analysis of the loss against ridge."""
        ref = REFERENCE if REFERENCE in trajs else None
        results = position_analysis(trajs, loss=True, reference=ref, seed=seed)
        examples = list(range(len(next(iter(results.values()))["curve"])))
        return {"reference": ref, "num_examples": examples}, results

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """Squared error by number of examples (log axis)."""
        return plot_position(results, path, "squared error", "in-context examples", 0, logy=True)

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Last loss and the ratios to ridge."""
        return {
            "policy": policy,
            "last_loss": result["last"],
            "last_ci95": result["last_ci95"],
            "last_vs_ridge": result.get("last_ratio"),
            "last_vs_ridge_ci95": result.get("last_ratio_ci95"),
            "mean_vs_ridge": result.get("mean_ratio"),
        }


analyze = RegressionAnalysis()
