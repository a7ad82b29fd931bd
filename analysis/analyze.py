"""``mesalab-analyze <run dir>``: the family's own analysis of a finished run's frozen learner.

    mesalab-analyze outputs/runs/two_step_lstm_rl_mem-on_related_s0
    mesalab-analyze outputs/runs/<run> --tasks 500 --out /tmp/analysis
    mesalab-analyze outputs/runs/<run> --controllers --horizons 1,2,4

Loads the run (``mesalab.studies.load.load_run``), draws held-out tasks from the run's evaluation
stream, rolls out the frozen learner and every reference of the family on the same tasks
with the same environment noise, and runs the family's analysis (two-step stay analysis,
Harlow accuracy by trial, restless-bandit learning rates per block, loss by position for
regression and sequences; the curve by trial for the other families). Writes
``analysis.json`` and the figures into the run directory (or ``--out``) and prints a table.

Two analyses on request, each to its own file beside it: ``--controllers`` (bandits: which
choice model explains the learner's own choices best, ``controllers.json``, see
:mod:`mesalab.analysis.controllers`) and ``--horizons 1,2,4`` (the learner on episodes 1x, 2x
and 4x its training length against the Bayes-optimal policy, ``horizons.json``, see
:mod:`mesalab.analysis.horizons`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mesalab.analysis.controllers import applies, controller_analysis, controller_table
from mesalab.analysis.family_analysis import analysis_for
from mesalab.analysis.horizons import horizon_analysis, horizon_table, parse_horizons
from mesalab.studies.errors import CheckpointError
from mesalab.studies.evaluate import heldout_tasks
from mesalab.studies.load import LoadedRun, load_run
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.policy.metrics import evaluate_references, rollout_stats
from mesalab.tasks.base import check
from mesalab.tasks.rollout import Trajectory


def heldout(loaded: LoadedRun, num_tasks: int, seed: int) -> Any:
    """The run's held-out evaluation tasks (the latent every analysis rolls out on)."""
    return heldout_tasks(
        loaded.distribution, num_tasks, seed, next(loaded.learner.parameters()).device
    )


def rollouts(loaded: LoadedRun, num_tasks: int, seed: int) -> dict[str, Trajectory]:
    """The frozen learner and every reference on the same held-out tasks and noise."""
    family = loaded.family
    latent = heldout(loaded, num_tasks, seed)
    policy = LearnerPolicy(loaded.learner, greedy=bool(loaded.cfg.eval.greedy))
    # no_grad rather than inference_mode: some fits (volatility) differentiate through the
    # recorded choices, which inference tensors would forbid
    with torch.no_grad():
        _, learner = rollout_stats(family, latent, policy, seed, keep_trajectory=True)
        _, refs = evaluate_references(family, latent, seed, keep_trajectories=True)
    return {"learner": learner, **refs}


def outer_learning_rate(loaded: LoadedRun) -> float | None:
    """The optimizer's initial learning rate of the run (None when it never trained)."""
    opt = loaded.cfg.training.get("optimizer")
    return float(opt.lr) if opt is not None and "lr" in opt else None


def outer_schedule(loaded: LoadedRun) -> list[float] | None:
    """[initial, final] learning rate of the run's linear decay (None when it never trained)."""
    lr = outer_learning_rate(loaded)
    if lr is None:
        return None
    return [lr, lr * float(loaded.cfg.training.get("lr_final_fraction", 1.0))]


def analyze_run(
    run_dir: str | Path, num_tasks: int = 1000, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Roll out, analyse, and write ``analysis.json`` + figures; returns the result."""
    loaded = load_run(run_dir)
    cfg, family = loaded.cfg, loaded.family
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(cfg.seed)
    trajs = rollouts(loaded, num_tasks, seed)
    # the analysis the family names on itself (the curve by trial unless it names its own)
    result = analysis_for(family)(
        trajs, family, out_dir=out, seed=seed, outer_lr=outer_learning_rate(loaded)
    )
    result = {
        "run_dir": str(run_dir),
        "task": cfg.task.name,
        "arch": cfg.arch.name,
        "training": cfg.training.name,
        "seed": seed,
        "num_tasks": num_tasks,
        "greedy": bool(cfg.eval.greedy),
        "outer_lr_schedule": outer_schedule(loaded),
        **result,
    }
    (out / "analysis.json").write_text(json.dumps(_finite(result), indent=1))
    return result


def analyze_controllers(
    run_dir: str | Path, num_tasks: int = 1000, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Which choice model explains the frozen learner best; writes ``controllers.json``."""
    loaded = load_run(run_dir)
    check(applies(loaded.family), "task", loaded.cfg.task.name, "a bandit family")
    seed = int(loaded.cfg.seed)
    latent = heldout(loaded, num_tasks, seed)
    policy = LearnerPolicy(loaded.learner, greedy=bool(loaded.cfg.eval.greedy))
    with torch.no_grad():
        _, traj = rollout_stats(loaded.family, latent, policy, seed, keep_trajectory=True)
    result = {**_header(loaded, run_dir, num_tasks), "analysis": "controllers"}
    result.update(controller_analysis(loaded.family, latent, traj, seed))
    result["table"] = controller_table(result)
    _write(out_dir or run_dir, "controllers.json", result)
    return result


def analyze_horizons(
    run_dir: str | Path,
    horizons: list[int],
    num_tasks: int = 1000,
    out_dir: str | Path | None = None,
    stretch: bool = False,
) -> dict[str, Any]:
    """The learner on longer episodes against the Bayes-optimal policy; ``horizons.json``."""
    loaded = load_run(run_dir)
    result = {**_header(loaded, run_dir, num_tasks), "analysis": "horizons"}
    result.update(horizon_analysis(loaded, horizons, num_tasks, int(loaded.cfg.seed), stretch))
    result["table"] = horizon_table(result)
    _write(out_dir or run_dir, "horizons.json", result)
    return result


def _header(loaded: LoadedRun, run_dir: str | Path, num_tasks: int) -> dict[str, Any]:
    """The fields every analysis file starts with."""
    cfg = loaded.cfg
    return {
        "run_dir": str(run_dir),
        "task": cfg.task.name,
        "arch": cfg.arch.name,
        "training": cfg.training.name,
        "seed": int(cfg.seed),
        "num_tasks": num_tasks,
        "greedy": bool(cfg.eval.greedy),
    }


def _write(out: str | Path, name: str, result: dict[str, Any]) -> None:
    """One strict-JSON analysis file in ``out``."""
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / name).write_text(json.dumps(_finite(result), indent=1))


def _finite(obj: Any) -> Any:
    """NaN and infinities as None: analysis.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _cell(value: Any) -> str:
    """One table cell: numbers to 4 significant digits, intervals as [lo, hi]."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of the analysis' ``table`` as aligned text."""
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``mesalab-analyze``)."""
    parser = argparse.ArgumentParser(prog="mesalab-analyze", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with checkpoint.pt")
    parser.add_argument("--tasks", type=int, default=1000, help="held-out tasks (default 1000)")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: run dir)")
    parser.add_argument(
        "--controllers", action="store_true", help="also: which choice model explains it (bandits)"
    )
    parser.add_argument(
        "--horizons", default=None, help="also: episodes this many times as long, e.g. 1,2,4"
    )
    parser.add_argument(
        "--stretch-clock",
        action="store_true",
        help="with --horizons: trial input t/(h T) in [0, 1] instead of the training clock t/T",
    )
    args = parser.parse_args(argv)
    if not (args.run_dir / "checkpoint.pt").exists():
        parser.error(f"run_dir={str(args.run_dir)!r}: no checkpoint.pt there")
    if args.tasks < 2:
        parser.error(f"--tasks={args.tasks} is not allowed: --tasks must be an int >= 2")
    try:
        horizons = None if args.horizons is None else parse_horizons(args.horizons)
    except ValueError as err:
        parser.error(str(err))
    try:
        result = analyze_run(args.run_dir, args.tasks, args.out)
        extra = []
        if args.controllers:
            extra.append(("controllers", analyze_controllers(args.run_dir, args.tasks, args.out)))
        if horizons is not None:
            extra.append(
                (
                    "horizons",
                    analyze_horizons(
                        args.run_dir, horizons, args.tasks, args.out, args.stretch_clock
                    ),
                )
            )
    except (CheckpointError, ValueError) as err:  # unreadable checkpoint, or a refused option
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or args.run_dir
    print(
        f"{result['analysis']} analysis of {result['task']} / {result['arch']} / "
        f"{result['training']} on {result['num_tasks']} held-out tasks -> {out}/analysis.json"
    )
    print(format_table(result["table"]))
    for fig in result["figures"]:
        print(f"figure: {out}/{fig}")
    for name, res in extra:
        print(f"\n{name} -> {out}/{name}.json")
        if name == "controllers":
            margin = f"{res['margin']:.4g} nats/choice over {res['runner_up']}"
            print(f"best: {res['best']} (margin {margin})")
        print(format_table(res["table"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
