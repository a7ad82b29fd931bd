"""Markov-chain sequence prediction: cross-entropy loss by position against the references.

The loss at position t is the expected log-loss of the predicted next-state distribution
(``-expected_reward``): the oracle (the true row) reaches the rows' entropy, the Bayesian
bigram predictor (``bayes_optimal``: exact, with or without change points) approaches it as
transitions are counted, and the unigram predictor, which ignores order, stays above. Every
policy is compared with ``bayes_optimal``: ratios of mean loss over the episode and at its
last position, and the loss in excess of it, with paired bootstrap intervals over tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesalab.analysis.family_analysis import FamilyAnalysis, Results
from mesalab.analysis.position import per_task_values, plot_position, position_analysis
from mesalab.studies.policy.resample import bootstrap_weights, mean_with_ci
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.rollout import Trajectory

REFERENCE = "bayes_optimal"


class SequenceAnalysis(FamilyAnalysis):
    """Loss by position for every policy, excess over the Bayes predictor (+ figure)."""

    name, figure = "markov_chain", "sequence_loss.png"

    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """Position analysis of the loss, and each policy's excess over the reference."""
        ref = REFERENCE if REFERENCE in trajs else None
        results = position_analysis(trajs, loss=True, reference=ref, seed=seed)
        if ref is not None:
            base = per_task_values(trajs[ref], loss=True).mean(dim=1)  # (N,)
            w = bootstrap_weights(base.shape[0], 1000, seed)
            for name, traj in trajs.items():
                excess = per_task_values(traj, loss=True).mean(dim=1) - base
                mean, _, ci = mean_with_ci(excess, w)
                results[name]["excess_mean"] = float(mean)
                results[name]["excess_mean_ci95"] = ci.tolist()
        return {"reference": ref}, results

    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """Cross-entropy by trial."""
        return plot_position(results, path, "cross-entropy (nats)", "trial")

    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """Mean and last loss, the excess over the Bayes predictor."""
        return {
            "policy": policy,
            "mean_loss": result["mean"],
            "last_loss": result["last"],
            "excess_vs_bayes": result.get("excess_mean"),
            "excess_ci95": result.get("excess_mean_ci95"),
        }


analyze = SequenceAnalysis()
