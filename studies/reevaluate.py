"""``mesalab-reevaluate``: the post-freeze evaluation of finished runs again, with today's code.

    mesalab-reevaluate outputs/sweeps/task_diversity_bernoulli_low/*/

When a reference is fixed (the Bernoulli bandit's Gittins index learned the family's range on
2026-12-02), runs evaluated before keep the old reference's figures in ``metrics.json``: its
regret, every ratio to it, and OOD ``kept_vs_ideal``. This rebuilds each run from its final
checkpoint (weights and loop state; the config is the checkpoint's own) and runs the same
evaluation as the end of ``mesalab-run``: the same held-out tasks and streams, so the
learner's own figures come out as before (the command checks it and refuses to write when
they do not) and only the references' can change. It rewrites ``metrics.json``,
``curves.npz`` and ``curves.png``; the record's ``code`` becomes today's commit, and its
training figures (``train``) and population are kept. Nothing is logged to W&B.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mesalab.studies.checkpoint import CheckpointError, load_checkpoint
from mesalab.studies.record import RunRecord, utc_stamp

#: the learner's figures that must not change when the run is evaluated again
LEARNER_KEYS = ("improvement", "regret", "total_reward")


class LearnerChanged(ValueError):
    """Evaluating again changed the learner's own figures: the run is not what was recorded."""


def _same(a: float, b: float) -> bool:
    """Equal numbers (NaN equal to NaN), to a relative tolerance of 1e-6."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def reevaluate(run_dir: str | Path) -> tuple[RunRecord, dict[str, tuple[Any, Any]]]:
    """Evaluate a finished run again; write its files; return the record and what changed.

    The change map is ``{"references.<name>.regret": (old, new), ...}``, the references whose
    regret changed (old None: not recorded before). Raises :class:`LearnerChanged`
    (writing nothing) when the learner's own evaluation differs from the recorded one.
    """
    from mesalab.studies.run import Run  # the Hydra app's module: imported when used

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise ValueError(f"run_dir={str(run_dir)!r}: no metrics.json (not a finished run)")
    old = json.loads(metrics_path.read_text())
    ck = load_checkpoint(run_dir / "checkpoint.pt")
    if not ck.get("final"):
        raise ValueError(f"run_dir={str(run_dir)!r}: checkpoint.pt is not the final one")
    cfg = OmegaConf.create(ck["config"])
    run = Run(cfg, run_dir, callbacks=[])
    run.resume()  # the final weights and loop state (training figures, emergence curve)
    run.population = old.get("population")
    # when it finished stands too (records before the field: the file's time, before rewriting)
    run.finished = old.get("finished") or utc_stamp(metrics_path.stat().st_mtime)
    run.trained_on = old.get("device")  # where it trained, not where it is evaluated again
    # the recorded training figures stand (a population member's wall time is its share)
    run.state.env_steps = int(old["train"]["env_steps"])
    run.state.wall_s = float(old["train"]["wall_s"])
    ev = run.freeze_and_evaluate()
    for key in LEARNER_KEYS:
        new_v = getattr(ev.eval, key, None)
        old_v = old.get("eval", {}).get(key)
        if old_v is not None and new_v is not None and not _same(float(old_v), float(new_v)):
            raise LearnerChanged(
                f"run_dir={str(run_dir)!r}: eval.{key} was {old_v}, is {new_v} when evaluated "
                "again (different code or device for the learner): not rewritten"
            )
    changes: dict[str, tuple[Any, Any]] = {}
    for name, summary in ev.references.items():
        before = old.get("references", {}).get(name, {}).get("regret")
        if before is None or not _same(float(before), float(summary.regret)):
            changes[f"references.{name}.regret"] = (before, summary.regret)
    rec = run.write(ev)
    return rec, changes


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``mesalab-reevaluate``)."""
    parser = argparse.ArgumentParser(prog="mesalab-reevaluate", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    failed = 0
    for i, run_dir in enumerate(args.run_dirs, 1):
        try:
            _, changes = reevaluate(run_dir)
        except (CheckpointError, ValueError) as err:
            print(f"[{i}/{len(args.run_dirs)}] error: {err}", file=sys.stderr)
            failed += 1
            continue
        said = ", ".join(
            f"{k} {'-' if a is None else f'{a:.4g}'} -> {b:.4g}" for k, (a, b) in changes.items()
        )
        print(f"[{i}/{len(args.run_dirs)}] {run_dir}: {said or 'no reference changed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
