"""Post-freeze evaluation metrics (DESIGN.md, "Post-freeze evaluation").

All metrics use the *expected* reward of the chosen action (not the sampled reward), to cut
variance. Per task (episode) of T trials:

- reward curve: expected reward at every trial; ``loss_curve = -reward_curve`` for
  prediction families (reward = -loss there);
- improvement: mean of the last ``ceil(T / 10)`` trials minus mean of the first ``ceil(T / 10)``
  of the reward curve (for a loss curve, first minus last: the same number);
- regret: expected cumulative regret against the oracle, summed over the episode's trials;
- total reward: expected reward summed over the episode's trials.

Every summary is a mean over tasks with a percentile-bootstrap 95% interval over tasks.
``normalized_improvement`` divides by the family's ideal reference (``family.ideal_reference``:
the Bayes-optimal policy, or Gittins where no exact one exists) on the same tasks.

Learner and references must see the same tasks and the same environment noise: roll every
policy out with :func:`rollout_stats` (or :func:`eval_generators`) under the same ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import TaskFamily, batch_size_of, check, concat_batch, index_batch, tree_map
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.rollout import Policy, Trajectory, rollout

#: bootstrap resamples per interval (percentile bootstrap of the mean over tasks)
NUM_RESAMPLES = 1000
#: tasks rolled out at once by default (bounds memory for large evaluations)
CHUNK_SIZE = 4096
# resample indices materialised per bootstrap chunk (bounds memory: 4M int64 = 32 MB)
_BOOTSTRAP_ELEMENTS = 1 << 22


def window(num_trials: int) -> int:
    """Trials averaged at each end of a curve for improvement: ceil(10% of T), at least 1."""
    check(isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1")
    return max(1, -(-num_trials // 10))


def reward_curve(traj: Trajectory) -> Tensor:
    """Mean expected reward at every trial, over tasks: (T,)."""
    return traj.expected_rewards.double().mean(dim=0)


def improvement(curve: Tensor, loss: bool = False) -> Tensor:
    """Last-10% mean minus first-10% mean along the last dim (first minus last for a loss).

    Works on one curve (T,) -> () or on per-task curves (B, T) -> (B,).
    """
    k = window(curve.shape[-1])
    first, last = curve[..., :k].mean(dim=-1), curve[..., -k:].mean(dim=-1)
    return first - last if loss else last - first


def cumulative_regret(traj: Trajectory) -> Tensor:
    """Expected regret against the oracle summed over each episode's trials: (B,)."""
    return traj.regret.double().sum(dim=1)


def total_reward(traj: Trajectory) -> Tensor:
    """Expected reward summed over each episode's trials: (B,)."""
    return traj.expected_rewards.double().sum(dim=1)


def bootstrap_ci(
    values: Tensor, num_resamples: int = NUM_RESAMPLES, seed: int = 0, level: float = 0.95
) -> Tensor:
    """Percentile-bootstrap interval of the mean over the first dim (tasks).

    ``values`` is (N,) or (N, K) (K statistics resampled with the same task indices);
    returns (2,) or (K, 2) as [lo, hi]. Seeded: the same call gives the same interval.
    """
    check(
        values.dim() in (1, 2) and values.shape[0] >= 1,
        "values",
        tuple(values.shape),
        "a non-empty (N,) or (N, K) tensor",
    )
    check(0.0 < level < 1.0, "level", level, "in (0, 1)")
    check(
        isinstance(num_resamples, int) and num_resamples >= 2,
        "num_resamples",
        num_resamples,
        "an int >= 2",
    )
    cols = rearrange(values.double(), "n ... -> n (...)")  # (N, K)
    n, k = cols.shape
    g = torch.Generator(device=cols.device).manual_seed(seed)
    per_chunk = max(1, _BOOTSTRAP_ELEMENTS // (n * k))
    means = []
    for start in range(0, num_resamples, per_chunk):
        r = min(per_chunk, num_resamples - start)
        idx = torch.randint(0, n, (r, n), generator=g, device=cols.device)  # (R, N)
        means.append(cols[idx].mean(dim=1))  # (R, N, K) -> (R, K)
    alpha = (1.0 - level) / 2
    q = torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64, device=cols.device)
    ci = rearrange(torch.quantile(torch.cat(means), q, dim=0), "two k -> k two")  # (K, 2)
    return ci[0] if values.dim() == 1 else ci


def normalized_improvement(value: float, ideal: float | None) -> float | None:
    """``value / ideal``; ``None`` when there is no ideal reference or it does not improve."""
    if ideal is None or not np.isfinite(ideal) or abs(ideal) < 1e-12:
        return None
    return float(value / ideal)


@dataclass
class TaskStats:
    """Per-task summaries of a batch of episodes: every metric needs only these (O(B + T))."""

    curve_sum: Tensor  # (T,) expected reward per trial, summed over tasks
    improvement: Tensor  # (B,) per-task improvement of the reward curve
    regret: Tensor  # (B,) per-task cumulative expected regret
    total_reward: Tensor  # (B,) per-task summed expected reward

    @property
    def num_tasks(self) -> int:
        """Number of tasks (episodes) summarised."""
        return int(self.improvement.shape[0])

    @property
    def reward_curve(self) -> Tensor:
        """Mean expected reward per trial, (T,)."""
        return self.curve_sum / self.num_tasks


def task_stats(traj: Trajectory) -> TaskStats:
    """Summarise a trajectory into per-task statistics (float64)."""
    expected = traj.expected_rewards.double()  # (B, T)
    return TaskStats(
        curve_sum=expected.sum(dim=0),
        improvement=improvement(expected),
        regret=cumulative_regret(traj),
        total_reward=expected.sum(dim=1),
    )


def concat_stats(parts: list[TaskStats]) -> TaskStats:
    """Join statistics of disjoint chunks of tasks."""
    return TaskStats(
        curve_sum=torch.stack([p.curve_sum for p in parts]).sum(dim=0),
        improvement=torch.cat([p.improvement for p in parts]),
        regret=torch.cat([p.regret for p in parts]),
        total_reward=torch.cat([p.total_reward for p in parts]),
    )


def summarize(
    stats: TaskStats,
    kind: str = "decision",
    ideal: TaskStats | None = None,
    seed: int = 0,
    num_resamples: int = NUM_RESAMPLES,
    ideal_improvement: float | None = None,
) -> dict[str, Any]:
    """The DESIGN.md eval dict (plus ``total_reward``) from per-task statistics.

    ``ideal`` are the ideal reference's statistics on the same tasks, or ``ideal_improvement``
    its mean improvement there (neither: no normalization, ``normalized_improvement`` is
    ``None``). Values are plain floats/lists. The one place normalization happens.
    """
    check(kind in ("decision", "prediction"), "kind", kind, "'decision' or 'prediction'")
    if ideal is not None:
        check(
            ideal.num_tasks == stats.num_tasks,
            "ideal",
            f"{ideal.num_tasks} tasks",
            f"statistics on the same {stats.num_tasks} tasks",
        )
    both = torch.stack([stats.improvement, stats.regret], dim=1)  # (N, 2)
    ci = bootstrap_ci(both, num_resamples=num_resamples, seed=seed).tolist()
    imp = float(stats.improvement.mean())
    ideal_imp = float(ideal.improvement.mean()) if ideal is not None else ideal_improvement
    curve = stats.reward_curve
    out: dict[str, Any] = {
        "num_tasks": stats.num_tasks,
        "num_trials": int(curve.shape[0]),
    }
    if kind == "prediction":
        out["loss_curve"] = (-curve).tolist()
    else:
        out["reward_curve"] = curve.tolist()
    out.update(
        improvement=imp,
        improvement_ci95=ci[0],
        normalized_improvement=normalized_improvement(imp, ideal_imp),
        regret=float(stats.regret.mean()),
        regret_ci95=ci[1],
        total_reward=float(stats.total_reward.mean()),
    )
    return out


def summarize_trajectory(
    traj: Trajectory,
    family: TaskFamily,
    ideal: Trajectory | None = None,
    seed: int = 0,
    num_resamples: int = NUM_RESAMPLES,
) -> dict[str, Any]:
    """The DESIGN.md eval dict of one trajectory, normalized by ``ideal`` (same tasks) if given."""
    ideal_stats = task_stats(ideal) if ideal is not None else None
    return summarize(task_stats(traj), family.kind, ideal_stats, seed, num_resamples)


def eval_generators(
    seed: int, chunk: int = 0, device: str | torch.device = "cpu"
) -> tuple[torch.Generator, torch.Generator]:
    """(environment, policy) generators for one evaluation chunk, identical for every policy."""
    check(isinstance(seed, int) and seed >= 0, "seed", seed, "an integer >= 0")
    env_seed, policy_seed = np.random.SeedSequence([seed, chunk]).generate_state(2, np.uint64)
    env = torch.Generator(device=device).manual_seed(int(env_seed) >> 1)
    pol = torch.Generator(device=device).manual_seed(int(policy_seed) >> 1)
    return env, pol


def rollout_stats(
    family: TaskFamily,
    latent: Any,
    policy: Policy,
    seed: int,
    distribution: TaskDistribution | None = None,
    chunk_size: int | None = CHUNK_SIZE,
    keep_trajectory: bool = False,
) -> tuple[TaskStats, Trajectory | None]:
    """Roll ``policy`` out on every task of ``latent`` in chunks; statistics (+ trajectory).

    Chunk i uses :func:`eval_generators` ``(seed, i)``, so any two policies evaluated with the
    same seed and chunk size see identical tasks and environment noise.
    """
    n = batch_size_of(latent)
    size = n if chunk_size is None else chunk_size
    check(isinstance(size, int) and size >= 1, "chunk_size", chunk_size, "an int >= 1 or None")
    device = _device_of(latent)
    stats, trajs = [], []
    for i, start in enumerate(range(0, n, size)):
        part = latent if size >= n else index_batch(latent, slice(start, start + size))
        env_gen, pol_gen = eval_generators(seed, i, device)
        traj = rollout(family, part, policy, env_gen, pol_gen, distribution)
        stats.append(task_stats(traj))
        if keep_trajectory:
            trajs.append(traj)
    joined = None
    if keep_trajectory:
        joined = trajs[0] if len(trajs) == 1 else _concat_trajectories(trajs)
    return concat_stats(stats), joined


def evaluate_references(
    family: TaskFamily,
    latent: Any,
    seed: int,
    names: Iterable[str] | None = None,
    distribution: TaskDistribution | None = None,
    chunk_size: int | None = CHUNK_SIZE,
    num_resamples: int = NUM_RESAMPLES,
    keep_trajectories: bool = True,
    progress: Callable[[list[str]], Iterable[str]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Trajectory]]:
    """Every reference of ``family`` (or those in ``names``) on the same tasks and noise.

    Returns ``(metrics by name, trajectories by name)``; trajectories are empty unless
    ``keep_trajectories``. The ideal reference is rolled out for normalization even when not
    requested; if the family has none, ``normalized_improvement`` is ``None``.
    ``progress`` optionally wraps the list of names (e.g. ``tqdm``).
    """
    refs = family.references()
    wanted = list(refs) if names is None else list(names)
    for name in wanted:
        check(name in refs, "policy", name, f"one of {list(refs)}")
    ideal_name = family.ideal_reference if family.ideal_reference in refs else None
    todo = wanted + ([ideal_name] if ideal_name and ideal_name not in wanted else [])
    stats: dict[str, TaskStats] = {}
    trajs: dict[str, Trajectory] = {}
    for name in progress(todo) if progress else todo:
        stats[name], traj = rollout_stats(
            family, latent, refs[name], seed, distribution, chunk_size, keep_trajectories
        )
        if keep_trajectories and name in wanted:
            trajs[name] = traj
    ideal = stats[ideal_name] if ideal_name else None
    metrics = {
        name: summarize(stats[name], family.kind, ideal, seed, num_resamples) for name in wanted
    }
    return metrics, trajs


def _device_of(latent: Any) -> torch.device:
    """Device of the first tensor field of a latent."""
    found: list[torch.device] = []
    tree_map(lambda x: found.append(x.device) or x, latent)
    return found[0] if found else torch.device("cpu")


def _concat_trajectories(parts: list[Trajectory]) -> Trajectory:
    """Join trajectories of disjoint chunks of tasks along B."""
    joined = concat_batch(parts)
    joined.info = {k: torch.cat([p.info[k] for p in parts]) for k in parts[0].info}
    return joined
