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

from pathlib import Path

from mesalab.studies.conditions import core_class, group_option, signal_class


def _as_dict(job: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in job)


def canonical_job(job: list[str]) -> list[str]:
    """The job's overrides rewritten to the run they are equivalent to."""
    d = _as_dict(job)
    arch, training = d.get("arch"), d.get("training")
    memoryless = arch is not None and not core_class(group_option("arch", arch)).has_memory
    if memoryless and "condition.memory" in d:
        d["condition.memory"] = "false"
    signal = signal_class(group_option("training", training)) if training is not None else None
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
    for job in jobs:
        canon = canonical_job(list(job))
        key = tuple(sorted(canon))
        if key not in seen:
            seen.add(key)
            out.append(canon)
    return out


def clear_records(folder: Path) -> None:
    """Remove a sweep's job records (``*.json`` under ``folder``) before a new launch."""
    for record in folder.glob("*.json"):
        record.unlink(missing_ok=True)
