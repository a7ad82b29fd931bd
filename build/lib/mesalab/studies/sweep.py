"""Which sweep combinations are the same run, so a study runs each distinct run once.

Two combinations coincide when:
- the arch has no memory (``has_memory: false``, e.g. ``ffn``): memory on and off are the
  same network, so memory is forced off;
- ``training=none``: the weights are never trained, so the training distribution cannot
  matter; only ``related`` is kept;
- a distribution other than ``pool`` ignores ``condition.pool_size``, so a study may sweep
  ``condition.distribution: pool,related`` against a list of pool sizes and get ``related``
  (K = infinity) once.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def arch_has_memory(arch: str) -> bool:
    """Read ``has_memory`` from ``configs/arch/<arch>.yaml`` (True when unspecified)."""
    path = CONFIG_DIR / "arch" / f"{arch}.yaml"
    return bool(OmegaConf.load(path).get("has_memory", True)) if path.exists() else True


def _as_dict(job: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in job)


def canonical_job(job: list[str]) -> list[str]:
    """The job's overrides rewritten to the run they are equivalent to."""
    d = _as_dict(job)
    arch = d.get("arch")
    if arch is not None and not arch_has_memory(arch) and "condition.memory" in d:
        d["condition.memory"] = "false"
    if d.get("training") == "none":
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
