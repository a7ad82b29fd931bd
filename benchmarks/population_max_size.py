"""How large a population job should be: N runs trained and evaluated in jobs of P members.

    .venv/bin/python benchmarks/population_max_size.py [--runs 16] [--sizes 1,4,8,16]
        [--updates 100] [--json]

The runs are the full-condition LSTM on the dependent bandit (``training=rl_short_horizon``,
batch 32, ``--updates`` updates, the default evaluation, no logger), seeds 0..N-1, through
``studies.population_run.run_population`` in one process with one thread: jobs of P members
one after the other (P = 1: each run alone, as ``population.max_size=1``). It prints the wall
time of all N runs per P (training, then evaluation, which runs member by member) and the
ratio to P = 1; with ``--json`` the last line is ``{"<P>": {"wall_s": ..., "speedup": ...}}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from mesalab.studies.population_run import run_population
from mesalab.studies.run import CONFIG_DIR, Run


def time_jobs(root: Path, runs: int, size: int, updates: int) -> tuple[float, float]:
    """(wall seconds of all runs, of which training) in jobs of ``size`` members."""
    base = [
        "training=rl_short_horizon",
        f"training.updates={updates}",
        "training.batch_size=32",
        "logger=none",
        "progress=false",
        "eval.every=0",
        "checkpoint_every=0",
    ]
    t0, train_s = time.perf_counter(), 0.0
    for lo in range(0, runs, size):
        seeds = range(lo, min(lo + size, runs))
        members = "population.members=[" + ",".join(f"{{seed:{s}}}" for s in seeds) + "]"
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[*base, members])
        recs = run_population(cfg, root / f"p{size}" / ".populations" / str(lo), Run)
        train_s += max(r.train.wall_s for r in recs if r is not None)  # the population's
    return time.perf_counter() - t0, train_s


def main() -> None:
    """Time every size and print the table (and JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--sizes", default="1,4,8,16")
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="mesalab-max-size-"))
    out: dict[str, dict[str, float]] = {}
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            wall, train_s = time_jobs(root, args.runs, size, args.updates)
            out[str(size)] = {"wall_s": wall, "train_s": train_s}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = out[min(out, key=int)]["wall_s"]
    print(f"{'P':>4} {'all runs s':>11} {'training s':>11} {'speedup':>8}")
    for size, row in out.items():
        row["speedup"] = ref / row["wall_s"]
        print(f"{size:>4} {row['wall_s']:>11.1f} {row['train_s']:>11.1f} {row['speedup']:>7.2f}x")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
