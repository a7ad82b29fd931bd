"""Freed memory kept (``studies.device.keep_freed_memory``) against glibc's defaults.

    .venv/bin/python benchmarks/keep_freed.py [--cores slot,transformer,lstm] [--size 6]
        [--updates 20] [--rounds 3]

Per core, a population of ``--size`` members (``population_throughput.population_trainer``:
A2C on the 100-trial dependent bandit, 32 episodes per member) trains ``--updates`` updates in
a fresh process, once with glibc's defaults (``MESALAB_KEEP_FREED=0``: large freed blocks go
back to the OS, and every update faults its pages in again) and once with the freed memory
kept. The two are interleaved over ``--rounds`` rounds, so they see the same load (the
machine is shared); it prints the median seconds per update of each, their ratio, and the
processes' system CPU time and peak resident memory (medians). One thread per process. Linux
with glibc only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time, resource
import torch
torch.set_num_threads(1)
sys.path.insert(0, {here!r})
from mesalab.studies.device import keep_freed_memory
kept = keep_freed_memory()
import population_throughput as pt
update = pt.population_trainer({core!r}, {size}, "cpu", "shared")
update()
t0 = time.perf_counter()
for _ in range({updates}):
    update()
seconds = (time.perf_counter() - t0) / {updates}
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"kept": kept, "s": seconds, "sys": use.ru_stime, "rss": use.ru_maxrss}}))
"""


def one(core: str, size: int, updates: int, keep: bool) -> dict[str, float]:
    """Seconds per update and system CPU seconds of one fresh process."""
    env = dict(os.environ, MESALAB_KEEP_FREED="1" if keep else "0", OMP_NUM_THREADS="1")
    code = CHILD.format(here=str(Path(__file__).parent), core=core, size=size, updates=updates)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="slot,transformer,lstm")
    parser.add_argument("--size", type=int, default=6)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"P = {args.size}, {args.updates} updates per process, median of {args.rounds} rounds")
    print()
    print(
        "| core | glibc defaults s/update | kept s/update | speedup | sys s, defaults / kept "
        "| peak MB, defaults / kept |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for core in args.cores.split(","):
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for r in range(args.rounds):
            for keep in (False, True) if r % 2 == 0 else (True, False):
                runs[keep].append(one(core, args.size, args.updates, keep))
        if not all(run["kept"] for run in runs[True]):
            raise SystemExit("keep_freed_memory did not apply here (not glibc?)")
        med = {k: statistics.median(run["s"] for run in v) for k, v in runs.items()}
        sys_s = {k: statistics.median(run["sys"] for run in v) for k, v in runs.items()}
        peak = {k: statistics.median(run["rss"] for run in v) / 1024 for k, v in runs.items()}
        print(
            f"| {core} | {med[False]:.4f} | {med[True]:.4f} | {med[False] / med[True]:.2f}x "
            f"| {sys_s[False]:.2f} / {sys_s[True]:.2f} | {peak[False]:.0f} / {peak[True]:.0f} |"
        )


if __name__ == "__main__":
    main()
