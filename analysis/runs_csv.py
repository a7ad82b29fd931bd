"""A sweep as one table: one CSV row per run (``runs.csv`` of a report).

Columns are the condition, the seed, the frozen evaluation, every reference, the training
record, the location and OOD measures, and what ``mesalab-analyze`` left beside the run
(probes, controllers, the learner's row of the family analysis). Paths are written relative to
the project so a committed table does not carry the machine that made it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mesalab.analysis.report_controllers import learner_row
from mesalab.analysis.sweep import CONDITION, Run, condition_of, load_json_object, pool_size


def flat_row(run: Run) -> dict[str, Any]:
    """One CSV row: condition, seed, eval metrics, references, training and frozen checks."""
    m = run.record
    ev = m.eval
    row: dict[str, Any] = {
        "run": run.name,
        **{k: condition_of(m, k) for k in CONDITION},
        "seed": m.seed,
        # K of a pool run; blank for related, single and trialwise
        "pool_size": pool_size(m.distribution) or None,
        "variant": run.variant,
        "device": m.device,  # blank for records written before the field
    }
    for k in (
        "improvement",
        "normalized_improvement",
        "regret",
        "total_reward",
        "num_tasks",
        "num_trials",
    ):
        row[f"eval_{k}"] = getattr(ev, k)
    for k in ("improvement", "regret"):
        lo, hi = getattr(ev, f"{k}_ci95")
        row[f"eval_{k}_lo"], row[f"eval_{k}_hi"] = lo, hi
    for name, ref in m.references.items():
        for k in ("improvement", "regret", "total_reward"):
            row[f"ref_{name}_{k}"] = getattr(ref, k)
    for k, v in vars(m.train).items():
        row[f"train_{k}"] = v
    loc = m.location
    row["location_index"] = loc.index if loc else None
    row["location_index_lo"], row["location_index_hi"] = (loc and loc.index_ci95) or (None, None)
    for obs in ("train_prior", "family_prior"):
        entry = loc.observers.get(obs) if loc else None
        row[f"location_{obs}_regret"] = entry.regret if entry else None
    for prior, entry in m.ood.items():
        for k in ("improvement", "kept", "kept_vs_ideal"):
            row[f"ood_{prior}_{k}"] = getattr(entry, k)
    # what ``mesalab-analyze --controllers`` left in the run directory (blank when not run)
    probe = load_json_object(run.path / "probes.json")
    row["probe_source"], row["probe_r2"] = probe.get("source"), probe.get("r2")
    row["probe_control_r2"] = probe.get("control_r2")
    for k, v in learner_row(load_json_object(run.path / "analysis.json")).items():
        row[f"analysis_{k}"] = v
    ctl = load_json_object(run.path / "controllers.json")
    row["controller_best"], row["controller_margin"] = ctl.get("best"), ctl.get("margin")
    row["frozen_verified"] = m.frozen.verified
    row["overrides"] = " ".join(run.overrides)
    row["path"] = portable_path(run.path)
    return row


#: the project's top folder in a checkout (analysis/ sits in it)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def portable_path(path: Path) -> str:
    """``path`` relative to the project, else to the working directory, else ``.../name``.

    Never an absolute path: a committed report must not carry the machine that made it.
    """
    path = Path(path).resolve()
    for base in (PROJECT_ROOT, Path.cwd().resolve()):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return f".../{path.name}"


def write_csv(runs: list[Run], path: Path) -> int:
    """Write one row per run (union of columns, blank where a run lacks one); rows written."""
    rows = [flat_row(r) for r in runs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), restval="")
        w.writeheader()
        w.writerows(rows)
    return len(rows)
