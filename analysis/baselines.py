"""``mesalab-baselines``: what the reference policies score on a task, before training anything.

    mesalab-baselines --task dependent_bandit --trials 100 --tasks 20000 --seed 0
    mesalab-baselines --task bernoulli_bandit --arms 5 --policies thompson,ucb1 --json
    mesalab-baselines --task dependent_bandit --plot outputs/baselines/dependent_bandit.png

Every policy runs on the same held-out tasks with the same environment noise. Totals and
regret are per episode, summed over trials, in expectation (expected reward of the chosen
action), averaged over tasks, with percentile-bootstrap 95% intervals over tasks.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mesalab.studies.policy.metrics import CHUNK_SIZE, evaluate_references
from mesalab.tasks import FAMILIES, TaskFamily, stream_generator

PLOT_SUFFIXES = (".png", ".pdf", ".svg")
JSON_FIELDS = ("total_reward", "regret", "regret_ci95", "improvement", "improvement_ci95")


def _int_at_least(lo: int):
    """argparse type: an integer >= ``lo`` (the message names what is allowed)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be an integer >= {lo}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``mesalab-baselines``."""
    p = argparse.ArgumentParser(
        prog="mesalab-baselines",
        description="Score every reference policy of a task family on the same held-out tasks.",
    )
    p.add_argument(
        "--task",
        default="dependent_bandit",
        choices=sorted(FAMILIES),
        help="task family (default: dependent_bandit)",
    )
    p.add_argument("--trials", type=_int_at_least(1), default=100, help="trials per episode")
    p.add_argument("--tasks", type=_int_at_least(1), default=20000, help="held-out tasks")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="evaluation seed")
    p.add_argument(
        "--arms",
        type=_int_at_least(2),
        default=None,
        help="number of arms, for bandit families that take it",
    )
    p.add_argument(
        "--policies",
        default=None,
        help="comma-separated reference names (default: all of the family's)",
    )
    p.add_argument("--prior", default="train", help="task prior (a family's named test priors)")
    p.add_argument("--plot", type=Path, default=None, help="write per-trial curves to FILE.png")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--chunk-size",
        type=_int_at_least(1),
        default=CHUNK_SIZE,
        help="tasks rolled out at once (bounds memory)",
    )
    # Per-trial tensors are small: a second OpenMP thread rarely helps, and on a loaded
    # machine thread contention slowed torch ops here by 10-40x.
    p.add_argument("--threads", type=_int_at_least(1), default=1, help="torch CPU threads")
    return p


def make_task(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TaskFamily:
    """Build the family from the options; a bad option exits 2 with a message naming it."""
    cls = FAMILIES[args.task]
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "num_trials" in params:
        kwargs["num_trials"] = args.trials
    elif args.trials != 100:
        parser.error(f"argument --trials: task {args.task} has a fixed number of trials")
    if args.arms is not None:
        if "num_arms" not in params:
            parser.error(f"argument --arms: task {args.task} takes no number of arms")
        kwargs["num_arms"] = args.arms
    try:
        family = cls(**kwargs)
    except ValueError as e:
        # check() messages start with the family's parameter name: report the matching option
        option = {"num_arms": "--arms", "num_trials": "--trials"}.get(str(e).split("=")[0])
        parser.error(f"argument {option or '--task'}: {e}")
    if args.prior not in family.priors:
        parser.error(
            f"argument --prior: invalid choice {args.prior!r} for task {args.task} "
            f"(choose from {', '.join(family.priors)})"
        )
    return family


def parse_policies(text: str | None, family: TaskFamily, parser: argparse.ArgumentParser):
    """The requested reference names, in the family's order of ``--policies``."""
    known = list(family.references())
    if text is None:
        return known
    names = [n.strip() for n in text.split(",")]
    for name in names:
        if name not in known:
            parser.error(
                f"argument --policies: unknown policy {name!r} for task {family.name} "
                f"(choose from {', '.join(known)})"
            )
    return list(dict.fromkeys(names))


def format_table(family: TaskFamily, metrics: dict[str, dict], num_tasks: int, seed: int) -> str:
    """A markdown table of every policy's scores (readable in a terminal too)."""
    ideal = family.ideal_reference
    lines = [
        f"{family.name}: {num_tasks} tasks x {family.num_trials} trials, seed {seed} "
        "(per episode, in expectation; [95% bootstrap interval over tasks])",
        "",
        "| policy | total reward | regret [95% CI] | improvement [95% CI] "
        "| normalized improvement |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in metrics.items():
        lo, hi = m["regret_ci95"]
        ilo, ihi = m["improvement_ci95"]
        norm = m["normalized_improvement"]
        lines.append(
            f"| {name} | {m['total_reward']:.2f} | {m['regret']:.2f} [{lo:.2f}, {hi:.2f}] "
            f"| {m['improvement']:.3f} [{ilo:.3f}, {ihi:.3f}] "
            f"| {'n/a' if norm is None else f'{norm:.2f}'} |"
        )
    if ideal in family.references():
        lines.append(f"\nnormalized improvement: improvement / {ideal}'s on the same tasks")
    else:
        lines.append(f"\nnormalized improvement: n/a (task {family.name} has no {ideal} reference)")
    return "\n".join(lines)


def plot_curves(family: TaskFamily, metrics: dict[str, dict], path: Path, num_tasks: int) -> None:
    """Per-trial expected reward (or loss) curves of every policy, to an image file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "loss_curve" if family.kind == "prediction" else "reward_curve"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, m in metrics.items():
        ax.plot(range(1, len(m[key]) + 1), m[key], label=name, lw=1.6)
    ax.set_xlabel("trial")
    ax.set_ylabel("expected loss" if key == "loss_curve" else "expected reward")
    ax.set_title(f"{family.name}: mean over {num_tasks} held-out tasks")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mesalab-baselines`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot is not None and args.plot.suffix.lower() not in PLOT_SUFFIXES:
        parser.error(f"argument --plot: {str(args.plot)!r} must end in one of {PLOT_SUFFIXES}")
    family = make_task(args, parser)
    names = parse_policies(args.policies, family, parser)
    torch.set_num_threads(args.threads)

    latent = family.sample_latent(args.tasks, stream_generator(args.seed, "eval"), args.prior)

    def bar(todo: list[str]) -> tqdm:
        return tqdm(todo, desc=family.name, unit="policy", file=sys.stderr, disable=args.json)

    metrics, _ = evaluate_references(
        family,
        latent,
        args.seed,
        names=names,
        chunk_size=args.chunk_size,
        keep_trajectories=False,
        progress=bar,
    )
    if args.plot is not None:
        plot_curves(family, metrics, args.plot, args.tasks)
    if args.json:
        out = {
            "task": family.name,
            "trials": family.num_trials,
            "tasks": args.tasks,
            "policies": {n: {k: m[k] for k in JSON_FIELDS} for n, m in metrics.items()},
        }
        print(json.dumps(out))
    else:
        print(format_table(family, metrics, args.tasks, args.seed))
        if args.plot is not None:
            print(f"curves: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
