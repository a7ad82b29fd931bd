"""Which sweep combinations are the same run, so a study runs each distinct run once.

Two combinations coincide when:
- the arch has no memory (its core class's ``has_memory`` is false, e.g. ``ffn``): memory on
  and off are the same network, so memory is forced off;
- the training signal never updates the weights (``training=none``): the training
  distribution cannot matter; only ``related`` is kept;
- a distribution other than ``pool`` ignores ``condition.pool_size``, so a study may sweep
  ``condition.distribution: pool,related`` against a list of pool sizes and get ``related``
  (K = infinity) once.
"""

from __future__ import annotations

import itertools
from typing import Any

from mesalab.studies.conditions import core_class, group_option, signal_class
from mesalab.studies.config import MEMBER_KEYS


def _as_dict(job: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in job)


def canonical_value(value: str) -> str:
    """Hydra's sweeper writes booleans as True/False; a study may write true/false."""
    return value.lower() if value in ("True", "False") else value


def canonical_job(job: list[str], options: dict[tuple[str, str], Any] | None = None) -> list[str]:
    """The job's overrides rewritten to the run they are equivalent to.

    ``options`` memoizes the config options read (``dedupe_jobs`` passes one for all its jobs:
    reading an option's YAML is most of the cost of a large study's expansion).
    """
    options = {} if options is None else options

    def option(group: str, name: str) -> Any:
        if (group, name) not in options:
            options[group, name] = group_option(group, name)
        return options[group, name]

    d = {k: canonical_value(v) for k, v in _as_dict(job).items()}
    arch, training = d.get("arch"), d.get("training")
    memoryless = arch is not None and not core_class(option("arch", arch)).has_memory
    if memoryless and "condition.memory" in d:
        d["condition.memory"] = "false"
    signal = signal_class(option("training", training)) if training is not None else None
    if signal is not None and not signal.updates_weights:
        if "condition.distribution" in d:
            d["condition.distribution"] = "related"
        d.pop("condition.pool_size", None)
    if d.get("condition.distribution", "pool") != "pool":
        d.pop("condition.pool_size", None)
    return [f"{k}={v}" for k, v in d.items()]


def dedupe_jobs(jobs: list[list[str]]) -> list[list[str]]:
    """Canonicalize every job and keep the first of each distinct one, in order."""
    seen: set[tuple[str, ...]] = set()
    out: list[list[str]] = []
    options: dict[tuple[str, str], Any] = {}
    for job in jobs:
        canon = canonical_job(list(job), options)
        key = tuple(sorted(canon))
        if key not in seen:
            seen.add(key)
            out.append(canon)
    return out


def group_jobs(jobs: list[list[str]], max_size: int) -> list[list[str]]:
    """Jobs that differ only in ``MEMBER_KEYS`` joined into population jobs of <= max_size runs,
    split as evenly as possible.

    A population job is the overrides its members share plus ``population.members`` (each
    member's own ``MEMBER_KEYS`` overrides); a group of one stays the plain job. Jobs with
    ``+``/``~`` overrides or their own ``population.members`` stay alone.
    """
    if max_size <= 1:
        return jobs
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    for job in jobs:
        alone = any(o.startswith(("+", "~", "population.members")) for o in job)
        # sorted: jobs of different sweep blocks may list the same overrides in another order
        key = sorted(o for o in job if o.split("=", 1)[0] not in MEMBER_KEYS)
        groups.setdefault(("\0", *job) if alone else tuple(key), []).append(job)
    out = []
    for members in groups.values():
        shared = [o for o in members[0] if o.split("=", 1)[0] not in MEMBER_KEYS]
        # as even as possible: 10 runs at max_size 8 are 5 + 5, not 8 + 2 (a small population
        # wastes what batching saves)
        n = -(-len(members) // max_size)
        bounds = [len(members) * k // n for k in range(n + 1)]
        for lo, hi in itertools.pairwise(bounds):
            chunk = members[lo:hi]
            if len(chunk) == 1:
                out.append(chunk[0])
                continue
            own = [[o for o in job if o.split("=", 1)[0] in MEMBER_KEYS] for job in chunk]
            listed = ",".join("{" + ",".join(o.replace("=", ":", 1) for o in m) + "}" for m in own)
            out.append([*shared, f"population.members=[{listed}]"])
    return out


def job_size(job: list[str]) -> int:
    """How many runs a job trains: its population's members, or 1."""
    for o in job:
        if o.startswith("population.members="):
            return o.count("{")
    return 1
