"""Does the frozen learner keep learning past its training horizon?

The frozen learner runs episodes ``h`` times as long as it was trained on (h = 1, 2, 4, ...),
on the same held-out tasks as the family's Bayes-optimal policy *for that length* (its DP is
solved for the longer horizon). A learning algorithm keeps improving after trial T; a policy
that only locates the task, or runs a fixed schedule, plateaus or degrades there.

The trial-index input keeps the training clock by default: it reads ``t / T_train``, so the
first T trials look exactly as in training and later trials continue the same scale past 1,
values the network never saw. ``stretch=True`` instead squeezes the longer episode into the
trained range, ``t / (h T_train)``, which changes every trial's input but none leaves the
range. Neither is neutral; running both tells whether a change past T comes from the clock.
A transformer is evaluated only where the episode fits its ``max_context``; a longer horizon
is reported as not fitting, never truncated.

Per horizon: the reward per segment of T_train trials (learner and Bayes), the improvement
(last 10% minus first 10% of the whole episode), and regret against the Bayes-optimal policy
(total per episode and per trial in the last segment), with bootstrap intervals over tasks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor

from mesalab.studies.evaluate import heldout_tasks
from mesalab.studies.load import LoadedRun
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.policy.metrics import bootstrap_ci, improvement, rollout_stats
from mesalab.tasks.base import Policy, StepContext, StepOut, TaskFamily, check
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.inputs import input_slices


class TrainingClock(Policy):
    """A policy seen through the training clock: the trial input rescaled to ``t / T_train``."""

    def __init__(self, policy: Policy, scale: float) -> None:
        self.policy, self.scale, self.name = policy, float(scale), policy.name

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """The wrapped policy's state; remembers where the trial index sits in the input."""
        self.trial = input_slices(family)["trial"]
        return self.policy.reset(family, batch_size, generator)

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Act on the input with the trial index in training units."""
        inputs = ctx.inputs.clone()
        inputs[:, self.trial] = inputs[:, self.trial] * self.scale  # t/(hT) -> t/T
        return self.policy.act(pstate, replace(ctx, inputs=inputs), generator)

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """The wrapped policy's update."""
        return self.policy.update(pstate, ctx, action, out)


def parse_horizons(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: positive integer multiples of the training length."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    check(
        bool(values) and all(v >= 1 for v in values), "--horizons", text, "e.g. 1,2,4 (ints >= 1)"
    )
    return values


def segment_means(curve: Tensor, seg: int) -> list[float]:
    """Mean of a per-trial curve (T,) over consecutive segments of ``seg`` trials."""
    return [float(curve[i : i + seg].mean()) for i in range(0, curve.shape[0], seg)]


def one_horizon(
    loaded: LoadedRun,
    h: int,
    num_tasks: int,
    seed: int,
    max_context: int | None,
    stretch: bool = False,
) -> dict[str, Any]:
    """Learner and Bayes-optimal policy on episodes ``h`` times the training length."""
    cfg, base = loaded.cfg, loaded.family
    t_train = base.num_trials
    t_len = h * t_train
    out: dict[str, Any] = {"horizon": h, "num_trials": t_len}
    if max_context is not None and t_len > max_context:
        out["fits"] = False
        out["reason"] = f"{t_len} trials > the core's max_context={max_context}"
        return out
    family = instantiate(cfg.task.family, num_trials=t_len)
    device = next(loaded.learner.parameters()).device
    dist = TaskDistribution(
        family, cfg.condition.distribution, cfg.condition.pool_size, seed=cfg.seed, device=device
    )
    latent = heldout_tasks(dist, num_tasks, seed, device)
    learner = LearnerPolicy(loaded.learner, greedy=bool(cfg.eval.greedy))
    if not stretch:
        learner = TrainingClock(learner, h)
    ideal = family.references()[family.ideal_reference]
    with torch.no_grad():
        _, lt = rollout_stats(family, latent, learner, seed, keep_trajectory=True)
        _, bt = rollout_stats(family, latent, ideal, seed, keep_trajectory=True)
    lr, br = lt.expected_rewards.double(), bt.expected_rewards.double()  # (N, T) each
    gap = br - lr  # per-trial regret against the Bayes-optimal policy
    last = slice(t_len - t_train, t_len)
    per_task_imp = improvement(lr)  # (N,)
    out.update(
        fits=True,
        learner_segments=segment_means(lr.mean(0), t_train),
        bayes_segments=segment_means(br.mean(0), t_train),
        improvement=float(per_task_imp.mean()),
        improvement_ci95=bootstrap_ci(per_task_imp, seed=seed).tolist(),
        regret_vs_bayes=float(gap.sum(1).mean()),
        regret_vs_bayes_ci95=bootstrap_ci(gap.sum(1), seed=seed).tolist(),
        last_segment_regret_per_trial=float(gap[:, last].mean()),
        last_segment_regret_per_trial_ci95=bootstrap_ci(gap[:, last].mean(1), seed=seed).tolist(),
    )
    return out


def horizon_analysis(
    loaded: LoadedRun, horizons: list[int], num_tasks: int, seed: int, stretch: bool = False
) -> dict[str, Any]:
    """Every horizon of ``horizons`` (multiples of the training length), JSON-ready."""
    max_context = getattr(loaded.learner.core, "max_context", None)
    return {
        "train_trials": loaded.family.num_trials,
        "max_context": max_context,
        "clock": "t / num_trials (stretched)" if stretch else "t / train_trials (training clock)",
        "ideal": loaded.family.ideal_reference,
        "horizons": [
            one_horizon(loaded, h, num_tasks, seed, max_context, stretch) for h in horizons
        ],
    }


def horizon_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per horizon."""
    rows = []
    for r in result["horizons"]:
        if not r["fits"]:
            rows.append({"horizon": r["horizon"], "trials": r["num_trials"], "note": r["reason"]})
            continue
        rows.append(
            {
                "horizon": r["horizon"],
                "trials": r["num_trials"],
                "learner_by_segment": r["learner_segments"],
                "bayes_by_segment": r["bayes_segments"],
                "improvement": r["improvement"],
                "regret_vs_bayes": r["regret_vs_bayes"],
                "last_seg_regret/trial": r["last_segment_regret_per_trial"],
            }
        )
    return rows
