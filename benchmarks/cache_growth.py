"""Caches grown in place against caches grown by concatenation, in the population benchmark.

    .venv/bin/python benchmarks/cache_growth.py [--cores transformer,slot] [--sizes 1,9,27]
        [--rounds 9] [--threads 1]

``benchmarks/population_throughput.py``'s three trainers (a population of P, one solo run at
batch 32 = "sequential", one solo run at batch 32P), each timed with the acting caches grown
in place (``archs.cache.append``, as the cores run now) and with the concatenation per step
they used before (patched back into the cores for the comparison only). Both in one process,
interleaved round by round (the machine is shared); medians. The results of the two are the
same bit for bit (``tests/archs/test_cache.py``); only the time differs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from mesalab.archs import population_attention, slot_memory, transformer
from mesalab.tasks import make_family

sys.path.insert(0, str(Path(__file__).resolve().parent))
from population_throughput import EPISODES, population_trainer, solo_trainer  # noqa: E402

IN_PLACE = (slot_memory.append, slot_memory.tail)


def concat_append(cache: torch.Tensor, new: torch.Tensor, dim: int, capacity: int) -> torch.Tensor:
    """The old growth: a copy of the whole cache per step."""
    return torch.cat([cache, new], dim=dim)


def concat_tail(cache: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """The old slot window: the last ``n`` entries, a plain slice."""
    return cache.narrow(dim, cache.shape[dim] - n, n) if cache.shape[dim] > n else cache


def use(concat: bool) -> None:
    """Point the cores at the concatenation (``concat``) or at the in-place growth."""
    grow, window = (concat_append, concat_tail) if concat else IN_PLACE
    for module in (transformer, slot_memory, population_attention):
        module.append = grow
    slot_memory.tail = window


def main() -> None:
    """Time both growths side by side per core and P; print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="transformer,slot")
    parser.add_argument("--sizes", default="1,9,27")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = EPISODES * make_family("dependent_bandit").num_trials
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} rounds\n")
    print(
        "| core | P | cache | population steps/s | sequential steps/s "
        "| one batch of 32P steps/s | speedup | efficiency |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for core in args.cores.split(","):
        for p in (int(s) for s in args.sizes.split(",")):
            trainers = {
                "population": population_trainer(core, p, "cpu", "shared"),
                "solo": solo_trainer(core, EPISODES, "cpu"),
                "big": solo_trainer(core, EPISODES * p, "cpu"),
            }
            times: dict[tuple[bool, str], list[float]] = {
                (c, n): [] for c in (True, False) for n in trainers
            }
            for concat in (True, False):  # warm-up
                use(concat)
                for update in trainers.values():
                    update()
            for _ in range(args.rounds):
                for concat in (True, False):
                    use(concat)
                    for name, update in trainers.items():
                        t0 = time.perf_counter()
                        update()
                        times[(concat, name)].append(time.perf_counter() - t0)
            use(False)
            for concat in (True, False):
                s = {n: statistics.median(times[(concat, n)]) for n in trainers}
                pop, seq = p * steps / s["population"], steps / s["solo"]
                big = p * steps / s["big"]
                label = "concatenated" if concat else "in place"
                print(
                    f"| {core} | {p} | {label} | {pop:,.0f} | {seq:,.0f} | {big:,.0f} "
                    f"| {pop / seq:.2f}x | {pop / big:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
