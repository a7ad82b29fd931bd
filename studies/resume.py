"""``resume=true``: continue a run only from a checkpoint of the same run.

The checkpoint stores the resolved config it was trained with. Resuming compares it with the
config of the command, key by key: any difference in a key that can change what the run
computes (seed, task, arch, training, condition, budget, evaluation, device) is refused,
because the weights would otherwise be reported under a config they were not trained with.
Keys that only change bookkeeping (``RESULT_FREE``) may differ; the run says which did.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mesalab.archs.base import Learner
from mesalab.studies.checkpoint import load_checkpoint, remove_orphans
from mesalab.studies.errors import CheckpointError, ResumeMismatch
from mesalab.studies.loop import LoopState
from mesalab.studies.version import code_state

log = logging.getLogger("mesalab.run")

#: top-level keys that do not change what a run computes: logging, progress bars, how often a
#: checkpoint is written, where outputs go and what they are called, the resume/force switches
#: themselves, and torch's CPU thread count (the same computation; with more than one thread
#: a float reduction may be split differently, so not necessarily the same bits).
RESULT_FREE = (
    "logger",
    "progress",
    "threads",
    "checkpoint_every",
    "resume",
    "force",
    "out_root",
    "sweep_name",
    "run_name",
    # how runs are grouped into jobs; a population run records its members (RunRecord)
    "population",
)

_ABSENT = "<absent>"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to the leaves of nested dicts (lists are leaves: compared whole)."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_differences(
    saved: dict[str, Any], current: dict[str, Any]
) -> list[tuple[str, Any, Any]]:
    """``(path, saved value, current value)`` for every leaf that differs, in path order."""
    a, b = flatten(saved), flatten(current)
    return [
        (k, a.get(k, _ABSENT), b.get(k, _ABSENT))
        for k in sorted(a.keys() | b.keys())
        if a.get(k, _ABSENT) != b.get(k, _ABSENT)
    ]


def _changes_results(path: str) -> bool:
    return path.split(".", 1)[0] not in RESULT_FREE


def check_resume(
    saved: dict[str, Any],
    current: dict[str, Any],
    path: Path,
    action: str = "resume=true",
    source: str = "checkpoint",
) -> list[str]:
    """Refuse ``action`` if the config changes results; return notes on keys that may differ.

    ``source`` names where ``saved`` came from in the message (the checkpoint, or the run's
    ``.hydra/config.yaml``)."""
    diffs = config_differences(saved, current)
    bad = [d for d in diffs if _changes_results(d[0])]
    if bad:
        lines = "\n".join(f"  {k}: {source} {a!r}, now {b!r}" for k, a, b in bad)
        raise ResumeMismatch(
            f"{action} refused: {source} {path} was trained with a different config "
            f"({len(bad)} key(s) that change results differ):\n{lines}\n"
            "To train this config afresh over it, add force=true (the run's outputs are "
            "replaced); to keep it, give the new run its own directory "
            "(hydra.run.dir=<dir>, or another out_root=<dir>)."
        )
    return [f"{k}: {source} {a!r}, now {b!r}" for k, a, b in diffs]


def check_finished(run_dir: Path, resolved: dict[str, Any]) -> None:
    """Before skipping a finished run, make sure it is this config's run (else refuse).

    A key outside the run name (``training.optimizer.lr``, say) changes results but not the
    directory: without this, the old run's results would be taken for the new config's.
    """
    path = Path(run_dir) / "checkpoint.pt"
    if path.exists():
        check_resume(load_checkpoint(path)["config"], resolved, path, "skipping the finished run")
        return
    # Without a checkpoint (a run's small files committed without it, say), the config Hydra
    # wrote beside the run stands in for the checkpoint's.
    composed = Path(run_dir) / ".hydra" / "config.yaml"
    try:
        saved = OmegaConf.to_container(OmegaConf.load(composed), resolve=True)
    except FileNotFoundError:
        saved = None
    except Exception as err:  # written by older code: an interpolation that no longer resolves
        log.warning("cannot resolve %s (%s): cannot compare its config: %s", composed, err, run_dir)
        return
    if not isinstance(saved, dict):
        log.warning("finished run without a checkpoint: cannot compare its config: %s", run_dir)
        return
    check_resume(saved, resolved, composed, "skipping the finished run", source="config")


def resume_from(
    path: Path,
    resolved: dict[str, Any],
    learner: Learner,
    optimizer: torch.optim.Optimizer | None,
    generators: dict[str, torch.Generator],
    device: torch.device | str,
) -> LoopState:
    """Restore weights, optimizer, RNG streams and loop state from the run's own checkpoint.

    Starts fresh (an empty ``LoopState``) when there is no checkpoint yet; removes temporary
    files of killed saves either way.
    """
    path = Path(path)
    for orphan in remove_orphans(path):
        log.info("removed %s, left by an interrupted save", orphan.name)
    if not path.exists():
        log.info("resume=true: no checkpoint at %s yet, starting fresh", path)
        return LoopState()
    ck = load_checkpoint(path, device)
    for note in check_resume(ck["config"], resolved, path):
        log.info("resume=true: differs from the checkpoint, results unchanged: %s", note)
    now = code_state()["commit"]
    if ck["code_version"] != now:
        log.warning("resume=true: checkpoint written by code %s, now %s", ck["code_version"], now)
    try:
        learner.load_state_dict(ck["learner"])
        if optimizer is not None and ck["optimizer"]:
            optimizer.load_state_dict(ck["optimizer"])
        for name, gen in generators.items():
            gen.set_state(ck["rng"][name].cpu())  # a CPU ByteTensor, on every device
        state = LoopState(**ck["loop"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        arch = ck["config"].get("arch", {}).get("name", "?")
        raise CheckpointError(
            f"checkpoint {path} (arch {arch}) does not fit this run: "
            f"{(str(err).splitlines() or [''])[0][:300]}"
        ) from None
    log.info("resumed from update %d", state.update)
    return state
