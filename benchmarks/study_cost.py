"""Study cost: a study's training time at its own populations and in one big batch.

    .venv/bin/python benchmarks/study_cost.py [--study three_conditions_quick] [--rows 864]
        [--updates 3] [--cores 2] [--target-min 20] [--json] [overrides ...]

The study's jobs are expanded, deduplicated and grouped into populations exactly as
``mesalab-run -m study=<study>`` does (``hydra/sweeper=dedup``; command-line overrides narrow
them, e.g. ``arch=lstm``). For every population job, in one process on one thread:

- study: the job's population as the sweep trains it (its members, batch, signal, memory),
  ``--updates`` updates of ``studies.population.population_step``; its training time is the
  median seconds per update times the job's ``training.updates``;
- one big batch: the job's first member alone at ``--rows`` episodes per update
  (``studies.loop.train_step``), the same signal and shapes: the rate a population approaches
  as it grows (``benchmarks/population_throughput.py``, "one batch of 32P"), so the job's
  env-steps at that rate are what its training would cost were per-operation overhead gone.

The two are timed in turn, round by round, so they share the machine's load. Untrained jobs
(``training=none``) cost no training and are counted apart. The table gives, per task and
arch, the predicted training seconds of each and their ratio; the totals give CPU minutes and
wall minutes on ``--cores`` cores (a perfect split; evaluation and setup not included), against
``--target-min``. With ``--json`` the last line is one JSON object: ``{"study": cpu seconds,
"one_big_batch": cpu seconds, "per_arch": {arch: [study s, big-batch s]}}``.

What it predicts is checked against a measured sweep in the README ("Study cost: the floor").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig

from hydra_plugins.mesalab_sweeper.dedup_sweeper import expand
from mesalab.archs.population import PopulationLearner, supports
from mesalab.studies.loop import train_step
from mesalab.studies.population import Member, population_step
from mesalab.studies.population_run import member_configs
from mesalab.studies.run import CONFIG_DIR, Run
from mesalab.studies.sweep import dedupe_jobs, group_jobs, job_size


def population_jobs(study: str, arguments: list[str]) -> list[list[str]]:
    """The study's jobs as its sweeper launches them: expanded, deduplicated, grouped.

    As in ``mesalab-run -m``, the sweeper's config is composed with the plain overrides (not
    the sweeps), so that one such as ``study.verdict_seeds=0`` reaches the seed lists its
    params interpolate.
    """
    parser = OverridesParser.create()
    plain = [a for a in arguments if not parser.parse_override(a).is_sweep_override()]
    full = compose(
        config_name="config", overrides=[f"study={study}", *plain], return_hydra_config=True
    )
    sweep = full.hydra.sweeper
    jobs = dedupe_jobs(expand(sweep.params, sweep.blocks, arguments, parser))
    return group_jobs(jobs, int(full.population.max_size))


def job_config(study: str, job: list[str]) -> DictConfig:
    """One job's composed config, quiet and on one thread."""
    return compose(
        config_name="config",
        overrides=[f"study={study}", *job, "logger=none", "threads=1", "progress=false"],
    )


def build_runs(cfgs: list[DictConfig], root: Path) -> list[Run]:
    """The members as the sweep builds them (no files written: nothing is trained to the end)."""
    return [Run(c, root / c.run_name, callbacks=[]) for c in cfgs]


def timers(cfg: DictConfig, rows: int, root: Path) -> tuple[Callable, Callable] | None:
    """(one update of the job's population, one update of its first member at ``rows``).

    None for a job that trains nothing.
    """
    runs = build_runs(member_configs(cfg) if cfg.population.members else [cfg], root)
    r0 = runs[0]
    if not r0.signal.updates_weights or r0.optimizer is None:
        return None
    tcfg, family = r0.cfg.training, r0.family
    batch = int(tcfg.batch_size)
    if supports(r0.learner):
        pop = PopulationLearner.stack([r.learner for r in runs])
        opts = [instantiate(tcfg.optimizer)(pop.member_parameters(i)) for i in range(len(runs))]
        members = [Member(r.distribution, r.env_gen, r.policy_gen) for r in runs]

        def study_update() -> None:
            population_step(
                pop, opts, r0.signal, family, members, batch, 0.0, tcfg.grad_clip, None,
                cfg.population.streams,
            )  # fmt: skip
    else:  # a core without a population computation: its members one after the other

        def study_update() -> None:
            for r in runs:
                train_step(
                    r.learner, r.optimizer, r.signal, family, r.distribution, batch, r.env_gen,
                    r.policy_gen, 0.0, tcfg.grad_clip, 0,
                )  # fmt: skip

    big = build_runs([r0.cfg], root / "big")[0]  # the first member again, trained alone

    def big_update() -> None:
        train_step(
            big.learner, big.optimizer, big.signal, family, big.distribution, rows, big.env_gen,
            big.policy_gen, 0.0, tcfg.grad_clip, 0,
        )  # fmt: skip

    return study_update, big_update


def median_seconds(a: Callable, b: Callable, rounds: int) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, timed in turn after one warm-up call each."""
    a(), b()
    ta, tb = [], []
    for _ in range(rounds):
        for f, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    """Time every population job of the study; print the table and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="three_conditions_quick")
    parser.add_argument("--rows", type=int, default=864, help="episodes of the one big batch")
    parser.add_argument("--updates", type=int, default=3, help="timed updates per job")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target-min", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="narrow the sweep, e.g. arch=lstm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows_out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    untrained = 0
    t_start = time.perf_counter()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        jobs = population_jobs(args.study, args.overrides)
        print(f"{args.study}: {sum(map(job_size, jobs))} runs in {len(jobs)} jobs", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for k, job in enumerate(jobs):
                cfg = job_config(args.study, job)
                made = timers(cfg, args.rows, Path(tmp) / str(k))
                if made is None:
                    untrained += job_size(job)
                    continue
                s_study, s_big = median_seconds(*made, args.updates)
                updates, n = int(cfg.training.updates), job_size(job)
                episodes = updates * int(cfg.training.batch_size) * n  # the job's training
                row = rows_out[(cfg.task.name, cfg.arch.name)]
                row[0] += n
                row[1] += 1
                row[2] += s_study * updates
                row[3] += episodes * s_big / args.rows  # at the big batch's episodes per second
                print(
                    f"  job {k + 1}/{len(jobs)} {cfg.task.name} {cfg.arch.name} "
                    f"{cfg.training.name} x{n}: {s_study * 1e3:.0f} ms/update "
                    f"(one big batch {s_big * 1e3:.0f} ms for {args.rows})",
                    flush=True,
                )
    print()
    print(f"torch {torch.__version__}, 1 thread, one big batch = {args.rows} episodes")
    print("| task | arch | runs | jobs | study s | one big batch s | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    per_arch: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (task, arch), (runs, njobs, s, b) in sorted(rows_out.items()):
        print(f"| {task} | {arch} | {runs} | {njobs} | {s:.0f} | {b:.0f} | {s / b:.2f} |")
        per_arch[arch][0] += s
        per_arch[arch][1] += b
    total = sum(v[0] for v in per_arch.values())
    floor = sum(v[1] for v in per_arch.values())
    print()
    for name, cpu in (("study", total), ("one big batch", floor)):
        print(
            f"{name}: {cpu / 60:.1f} CPU-min of training, {cpu / 60 / args.cores:.1f} min on "
            f"{args.cores} cores (target {args.target_min:g} min: "
            f"{cpu / 60 / args.cores / args.target_min:.2f}x)"
        )
    print(f"untrained runs (no training time): {untrained}; benchmark took "
          f"{time.perf_counter() - t_start:.0f} s")  # fmt: skip
    if args.json:
        print(
            json.dumps(
                {
                    "study": round(total, 1),
                    "one_big_batch": round(floor, 1),
                    "per_arch": {a: [round(v[0], 1), round(v[1], 1)] for a, v in per_arch.items()},
                }
            )
        )


if __name__ == "__main__":
    main()
