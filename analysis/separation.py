"""Can a bandit family tell task location from task learning? The two observers, no training.

    python -m mesalab.analysis.separation            # the candidate families, K = 2^0..2^10
    python -m mesalab.analysis.separation --tasks 200 --seeds 0,1 --ks 1,16,256 --json

The location index (``mesalab.studies.policy.location``) compares a frozen network with two
Bayes observers: the *training-prior* one (its prior is the K pool tasks: task location) and
the *family-prior* one (task learning). It can only tell the readings apart at steps where the
observers act differently, and the readings only matter if locating costs reward on new tasks.
This measures both for a family and a pool size, with the observers themselves as actors (no
network): for each actor (the training-prior observer, then the family-prior one) on held-out
tasks, both observers are fed the actor's history (``ShadowPolicy``) and, per step:

- ``informative``: the share of steps where their choices differ at all (the index's
  ``informative_steps``), including steps where one of them is exactly indifferent (a tie);
- ``strict``: the share where no arm is best for both (their greedy sets, ties included, are
  disjoint): whatever a network picks there agrees with one reading at most. Where one
  observer is indifferent between the other's arm and another, a pick is never against it,
  so those steps tell little (two arms: a tie at the first trial, or after equal evidence);
- each observer's own regret on the same tasks and noise, and the paired gap (training-prior
  minus family-prior regret, per task; 95% bootstrap interval over tasks): what locating
  costs on tasks outside the pool.

Pools are drawn per seed (``TaskDistribution(..., "pool", K, seed=s)``), held-out tasks from
the seed's ``eval`` stream, as in a run. Numbers are means over seeds (the gap's interval pools
the seeds' tasks).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mesalab.studies.policy.location import OBSERVERS, ShadowPolicy, location_index, observers_for
from mesalab.studies.policy.metrics import bootstrap_ci, rollout_stats
from mesalab.tasks import TaskDistribution, make_family, stream_generator
from mesalab.tasks.base import TaskFamily

#: the families compared by default: (label, family name, constructor arguments)
CANDIDATES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("dependent, 2 arms", "dependent_bandit", {}),
    ("dependent, p1 in [0,0.4]+[0.6,1]", "dependent_bandit", {"p_high": 0.4}),
    ("bernoulli, 2 arms", "bernoulli_bandit", {"num_arms": 2}),
    ("bernoulli, 5 arms", "bernoulli_bandit", {"num_arms": 5}),
    ("bernoulli, 10 arms", "bernoulli_bandit", {"num_arms": 10}),
    ("bernoulli, 5 arms, p in [0,0.3]", "bernoulli_bandit", {"num_arms": 5, "p_high": 0.3}),
)
KS = tuple(2**i for i in range(11))


@dataclass
class Separation:
    """The two observers on one family and pool size, averaged over seeds."""

    family: str
    pool_size: int
    seeds: int
    num_tasks: int
    num_trials: int
    informative: dict[str, float]  # by actor: steps where the observers' choices differ
    strict: dict[str, float]  # by actor: both strictly prefer an arm, and not the same one
    regret: dict[str, float]  # by observer, acting on its own
    gap: float  # training-prior minus family-prior regret, per episode
    gap_ci95: list[float]


def strict_disagreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per step: no arm is best for both greedy vectors (N, T, A) (ties split), (N, T) bool."""
    return ((a > 0) & (b > 0)).sum(dim=-1) == 0


def one_seed(family: TaskFamily, k: int, num_tasks: int, seed: int) -> dict[str, Any]:
    """Both observers as actors on one seed's pool: per-actor shares, per-task regrets."""
    dist = TaskDistribution(family, "pool", pool_size=k, seed=seed)
    latent = dist.heldout(num_tasks, stream_generator(seed, "eval"))
    out: dict[str, Any] = {"informative": {}, "strict": {}, "regret": {}}
    for actor_name in OBSERVERS:
        # a fresh pair for the shadow, and the actor from another pair: no shared state
        actor = observers_for(family, dist)[actor_name]
        shadow = ShadowPolicy(actor, observers_for(family, dist), seed)
        with torch.inference_mode():
            stats, _ = rollout_stats(family, latent, shadow, seed)
        v = shadow.vectors()
        out["informative"][actor_name] = location_index(v, seed, 2)["informative_steps"]
        strict = strict_disagreement(v["train_prior"], v["family_prior"])
        out["strict"][actor_name] = float(strict.double().mean())
        out["regret"][actor_name] = stats.regret  # (N,) per task
    return out


def separation(
    family: TaskFamily, k: int, num_tasks: int = 500, seeds: Sequence[int] = (0, 1, 2)
) -> Separation:
    """How often, and at what cost, the two observers of ``pool(k)`` differ on new tasks."""
    runs = [one_seed(family, k, num_tasks, s) for s in seeds]

    def mean(key: str, name: str) -> float:
        return sum(float(r[key][name].mean()) for r in runs) / len(runs)

    diff = torch.cat([r["regret"]["train_prior"] - r["regret"]["family_prior"] for r in runs])
    return Separation(
        family=family.name,
        pool_size=k,
        seeds=len(runs),
        num_tasks=num_tasks,
        num_trials=family.num_trials,
        informative={a: sum(r["informative"][a] for r in runs) / len(runs) for a in OBSERVERS},
        strict={a: sum(r["strict"][a] for r in runs) / len(runs) for a in OBSERVERS},
        regret={a: mean("regret", a) for a in OBSERVERS},
        gap=float(diff.mean()),
        gap_ci95=[float(x) for x in bootstrap_ci(diff)],
    )


HEADER = (
    "| family | K | informative (loc. / learn. histories) | strict | "
    "training-prior regret | family-prior regret | gap [95%] |"
)


def table_row(label: str, s: Separation) -> str:
    """One markdown row of :data:`HEADER`."""
    inf, st = s.informative, s.strict
    return (
        f"| {label} | {s.pool_size} | {inf['train_prior']:.1%} / {inf['family_prior']:.1%} | "
        f"{st['train_prior']:.1%} / {st['family_prior']:.1%} | {s.regret['train_prior']:.2f} | "
        f"{s.regret['family_prior']:.2f} | {s.gap:.2f} [{s.gap_ci95[0]:.2f}, {s.gap_ci95[1]:.2f}] |"
    )


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: a comma list of integers >= 0")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mesalab.analysis.separation``: print the table (or JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=_ints, default=list(KS), help="pool sizes (default 2^0..2^10)")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="default 0,1,2")
    parser.add_argument("--tasks", type=int, default=500, help="held-out tasks per seed")
    parser.add_argument("--trials", type=int, default=100, help="trials per episode")
    parser.add_argument("--only", default=None, help="run the candidates whose label has this")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if min(args.ks) < 1 or args.tasks < 2 or args.trials < 1:
        parser.error("--ks must be >= 1, --tasks >= 2, --trials >= 1")
    torch.set_num_threads(1)
    if not args.json:
        print(HEADER)
        print("|---" * (HEADER.count("|") - 1) + "|")
    for label, name, kwargs in CANDIDATES:
        if args.only and args.only not in label:
            continue
        family = make_family(name, num_trials=args.trials, **kwargs)
        for k in args.ks:
            s = separation(family, k, args.tasks, args.seeds)
            if args.json:
                print(json.dumps({"label": label, **asdict(s)}), flush=True)
            else:
                print(table_row(label, s), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
