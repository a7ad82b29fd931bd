"""Population throughput: P runs as one population against the same P runs one after the other.

    .venv/bin/python benchmarks/population_throughput.py [--cores lstm,gru,...] [--sizes 1,3,9,27]
        [--updates 7] [--threads 1] [--streams shared|member] [--device cpu] [--json]

Per core at matched width (the widths of ``configs/arch``), A2C on the 100-trial dependent
bandit, 32 episodes per member per update, in one process with ``--threads`` threads:

- population: P members (seeds 0..P-1) as one batched computation (``studies.population.
  population_step``);
- sequential: the same P runs one after the other, i.e. P times the update time of one solo
  run at batch 32 (``studies.loop.train_step``, a population of one);
- one big batch: one solo run at batch 32 P: the same arithmetic in one batch, the limit a
  population can approach.

Every run uses Adam with ``foreach=True`` (bit for bit the CPU default, single-tensor Adam,
but a few calls per step instead of a few per parameter tensor: a population takes P steps).
Each figure is the median update time over ``--updates`` rounds after one warm-up update; in
each round the three are timed in turn, so they share the machine's load (it is shared).
``speedup`` = population / sequential and ``efficiency`` = population / one big batch, both in
env-steps/s. With ``--json`` the last line is one JSON object:
``{"<core>": {"<P>": {"speedup": ..., "efficiency": ...}}}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mesalab.archs import Learner
from mesalab.archs.population import PopulationLearner
from mesalab.studies.conditions import arch_has_memory
from mesalab.studies.device import keep_freed_memory
from mesalab.studies.load import build_core
from mesalab.studies.loop import train_step
from mesalab.studies.population import STREAM_MODES, Member, population_step
from mesalab.studies.signals import A2C
from mesalab.tasks import TaskDistribution, make_family, stream_generator

ARCH_DIR = Path(__file__).resolve().parents[1] / "configs" / "arch"
EPISODES = 32


def build(core: str, seed: int, device: str) -> Learner:
    """The matched-width learner of ``configs/arch/<core>.yaml`` for the dependent bandit."""
    fam = make_family("dependent_bandit")
    arch = OmegaConf.load(ARCH_DIR / f"{core}.yaml")
    torch.manual_seed(seed)
    # widths left null in the config are matched here, as in a run (studies.load.build_core)
    made = build_core(arch, fam.input_dim, fam.num_actions, arch_has_memory(arch))
    return Learner(made, fam.num_actions).to(device)


def member(seed: int, device: str) -> Member:
    """Member ``seed``: the related dependent bandit with its own streams."""
    fam = make_family("dependent_bandit")
    return Member(
        TaskDistribution(fam, "related", seed=seed, device=device),
        stream_generator(seed, "train", device),
        stream_generator(seed, "policy", device),
    )


def solo_trainer(core: str, batch: int, device: str) -> Callable[[], None]:
    """One update of one solo run at ``batch`` episodes per call (``studies.loop.train_step``)."""
    fam = make_family("dependent_bandit")
    learner = build(core, 0, device)
    opt = torch.optim.Adam(learner.parameters(), lr=1e-3, foreach=True)
    m = member(0, device)

    def update() -> None:
        train_step(
            learner, opt, A2C(), fam, m.distribution, batch, m.env_gen, m.policy_gen, 0.0, 1.0, 0
        )

    return update


def population_trainer(core: str, size: int, device: str, streams: str) -> Callable[[], None]:
    """One update of a population of ``size`` members, 32 episodes each, per call."""
    fam = make_family("dependent_bandit")
    pop = PopulationLearner.stack([build(core, s, device) for s in range(size)])
    opts = [torch.optim.Adam(pop.member_parameters(i), lr=1e-3, foreach=True) for i in range(size)]
    members = [member(s, device) for s in range(size)]

    def update() -> None:
        population_step(pop, opts, A2C(), fam, members, EPISODES, 0.0, 1.0, None, streams)

    return update


def median_seconds(
    trainers: dict[str, Callable[[], None]], rounds: int, device: str
) -> dict[str, float]:
    """Median seconds per update of each trainer, timed in turn within each round.

    Interleaved so that all see the same load (the machine is shared): ratios are the claim.
    On CUDA each update is timed to the end of its kernels (synchronised before and after).
    """

    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    for update in trainers.values():  # warm-up
        update()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, update in trainers.items():
            sync()
            t0 = time.perf_counter()
            update()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    """Measure every core and size side by side; print a table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="lstm,gru,ffn,slot,transformer")
    parser.add_argument("--sizes", default="1,3,9,27")
    parser.add_argument("--updates", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--streams", default="shared", choices=STREAM_MODES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every run does (MESALAB_KEEP_FREED=0: glibc's defaults)
    steps = EPISODES * make_family("dependent_bandit").num_trials  # env-steps per member-update
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, "
        f"streams={args.streams}, median of {args.updates} interleaved rounds\n"
    )
    print(
        "| core | P | population steps/s | sequential steps/s | one batch of 32P steps/s "
        "| speedup | efficiency |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    result: dict[str, dict[str, dict[str, float]]] = {}
    for core in args.cores.split(","):
        for p in (int(s) for s in args.sizes.split(",")):
            secs = median_seconds(
                {
                    "population": population_trainer(core, p, args.device, args.streams),
                    "solo": solo_trainer(core, EPISODES, args.device),
                    "big": solo_trainer(core, EPISODES * p, args.device),
                },
                args.updates,
                args.device,
            )
            pop, seq, big = (
                p * steps / secs["population"],
                steps / secs["solo"],
                p * steps / secs["big"],
            )
            row = {"speedup": pop / seq, "efficiency": pop / big}
            result.setdefault(core, {})[str(p)] = row
            print(
                f"| {core} | {p} | {pop:,.0f} | {seq:,.0f} | {big:,.0f} "
                f"| {row['speedup']:.2f}x | {row['efficiency']:.2f} |",
                flush=True,
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
