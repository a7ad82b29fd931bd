"""``make study`` until the run pipeline exists: every reference on every bandit family.

For each bandit family in ``tasks.FAMILIES`` (a decision family whose only input is its
reward: no observation, and the reward alone as feedback), run ``mesalab-baselines`` with
its defaults, print the regret table and write the per-trial reward curves to
``<out>/<family>.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mesalab.analysis import baselines
from mesalab.tasks import FAMILIES


def bandit_families() -> list[str]:
    """Registered families that are bandits: decision tasks whose only input is the reward."""
    names = []
    for name, cls in FAMILIES.items():
        family = cls()
        if family.kind == "decision" and family.obs_dim == 0 and family.feedback_dim == 1:
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    """Run the baselines of every bandit family; print tables and the written paths."""
    p = argparse.ArgumentParser(prog="python -m mesalab.analysis.demo", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/baselines"))
    p.add_argument("--tasks", default="20000", help="held-out tasks per family")
    p.add_argument("--trials", default="100", help="trials per episode")
    p.add_argument("--seed", default="0")
    args = p.parse_args(argv)

    start, written = time.perf_counter(), []
    for name in bandit_families():
        path = args.out / f"{name}.png"
        cli = ["--task", name, "--tasks", args.tasks, "--trials", args.trials]
        baselines.main([*cli, "--seed", args.seed, "--plot", str(path)])
        written.append(path)
        print()
    print(f"done in {time.perf_counter() - start:.0f} s; reward curves:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
