"""Statistically the same results? Ten seeds as one population against the same ten seeds solo.

    .venv/bin/python benchmarks/population_vs_solo.py [--seeds 10] [--streams shared]
        [--out outputs/population_vs_solo] [--json]

The runs are the three_conditions study's full-condition LSTM on the dependent bandit
(``study=three_conditions task=dependent_bandit arch=lstm training=rl_short_horizon``: A2C, 600
updates at batch 32, the default evaluation on 1000 held-out tasks, no logger), seeds 0..N-1,
one thread. One set trains all N seeds as one population (``population.members``, with the
given ``--streams``); the other trains each seed alone (``Run``, what ``population.max_size=1``
runs). A population's member is not bit-identical to its solo run (shared streams draw the
environment and policy noise from member 0's generators; member streams draw them once per
update instead of per step), so the two sets are two samples of the same distribution at best.

It prints each seed's regret ratio (the frozen learner's regret / the Bayes-optimal policy's on
the same held-out tasks) in both sets, their means, Welch's t-test and the Mann-Whitney U test
(two-sided), and both sets' wall times. Finished runs under ``--out`` are reused: delete the
folder to retime. With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from scipy import stats

from mesalab.studies.population_run import run_population
from mesalab.studies.record import RunRecord, read_record
from mesalab.studies.run import CONFIG_DIR, Run, run

BASE = [
    "study=three_conditions",
    "task=dependent_bandit",
    "arch=lstm",
    "training=rl_short_horizon",
    "logger=none",
    "progress=false",
]


def ratio(rec: RunRecord) -> float:
    """The run's frozen regret over the Bayes-optimal policy's on the same tasks."""
    return rec.eval.regret / rec.references["bayes_optimal"].regret


def population(out: Path, seeds: int, streams: str) -> tuple[list[RunRecord], float]:
    """All seeds as one population: their records and the wall seconds."""
    members = "population.members=[" + ",".join(f"{{seed:{s}}}" for s in range(seeds)) + "]"
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, members, f"population.streams={streams}"])
    t0 = time.perf_counter()
    recs = run_population(cfg, out / ".populations" / "job", Run)
    wall = time.perf_counter() - t0
    # a reused (finished) member comes back as None: read what it wrote
    recs = [read_record(d) for d in sorted(out.glob("dependent_bandit_*"))]
    return [r for r in recs if r is not None], wall


def solo(out: Path, seeds: int) -> tuple[list[RunRecord], float]:
    """Each seed alone: their records and the wall seconds of all of them."""
    recs, t0 = [], time.perf_counter()
    for s in range(seeds):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("config", overrides=[*BASE, f"seed={s}"])
        d = out / "solo" / cfg.run_name
        run(cfg, d)
        recs.append(read_record(d))
    return [r for r in recs if r is not None], time.perf_counter() - t0


def main() -> None:
    """Train both sets (or reuse them) and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--streams", default="shared", choices=["shared", "member"])
    ap.add_argument("--out", type=Path, default=Path("outputs/population_vs_solo"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pop, pop_s = population(args.out / f"population_{args.streams}", args.seeds, args.streams)
    sol, sol_s = solo(args.out, args.seeds)
    a = np.array([ratio(r) for r in sorted(pop, key=lambda r: r.seed)])
    b = np.array([ratio(r) for r in sorted(sol, key=lambda r: r.seed)])
    welch = stats.ttest_ind(a, b, equal_var=False)
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    print(f"regret / Bayes-optimal regret, {len(a)} population members ({args.streams} streams)")
    print(f"vs {len(b)} solo runs (LSTM, dependent bandit, three_conditions budget)")
    print(f"{'seed':>4} {'population':>11} {'solo':>8}")
    for s, (x, y) in enumerate(zip(a, b, strict=True)):
        print(f"{s:>4} {x:>11.3f} {y:>8.3f}")
    print(f"mean {a.mean():>11.3f} {b.mean():>8.3f}")
    print(f"Welch t = {welch.statistic:.3f}, p = {welch.pvalue:.3f}")
    print(f"Mann-Whitney U = {mwu.statistic:.1f}, p = {mwu.pvalue:.3f}")
    k_pop, k_solo = int((a <= 2).sum()), int((b <= 2).sum())
    print(f"within 2x Bayes: population {k_pop}/{len(a)}, solo {k_solo}/{len(b)}")
    print(f"wall: population {pop_s:.1f} s, solo {sol_s:.1f} s (reused runs count ~0)")
    if args.json:
        print(
            json.dumps(
                {
                    "population": a.tolist(),
                    "solo": b.tolist(),
                    "welch_p": float(welch.pvalue),
                    "mannwhitney_p": float(mwu.pvalue),
                    "population_wall_s": pop_s,
                    "solo_wall_s": sol_s,
                }
            )
        )


if __name__ == "__main__":
    main()
