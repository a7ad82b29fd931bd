"""Read a sweep directory of runs and aggregate them over seeds.

A sweep directory holds one subdirectory per run (``metrics.json``, ``.hydra/``; see
DESIGN.md, "Outputs of a run"). Runs are grouped by condition (task, arch, training, memory,
distribution, plus any other override that varies *within* such a group, the "variant"), and
every metric is summarised across seeds by its mean and a 95% t-interval over the seed means.
With a single seed there is no spread across seeds to use, so the interval falls back to the
run's own bootstrap interval over tasks (and says so).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats
from tqdm import tqdm

#: metrics.json keys a finished run must have (the rest is optional for the report)
REQUIRED = ("task", "arch", "training", "memory", "distribution", "seed", "eval")
EVAL_REQUIRED = ("improvement", "improvement_ci95", "regret", "regret_ci95")
#: the condition columns of a group, in table order
CONDITION = ("task", "arch", "training", "memory", "distribution")
#: references whose regret is reported; the oracle's is zero by definition (regret is vs it)
SKIP_REF_REGRET = ("oracle",)
#: the ideal observer used for the regret ratio, first one present
IDEAL_REFERENCES = ("bayes_optimal", "gittins")
# overrides that never change what a run computes (bookkeeping, logging, launchers)
_BOOKKEEPING = (
    "seed",
    "out_root",
    "sweep_name",
    "run_name",
    "progress",
    "device",
    "resume",
    "force",
    "checkpoint_every",
    "logger",
    "hydra",
    "study",
)


@dataclass
class Run:
    """One finished run: its directory, metrics.json, overrides and (raw) Hydra config."""

    name: str
    path: Path
    metrics: dict[str, Any]
    overrides: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    variant: str = ""

    def key(self) -> tuple:
        """The group this run belongs to: condition columns plus variant."""
        return (*(self.metrics[k] for k in CONDITION), self.variant)

    def curve(self, summary: dict[str, Any] | None = None) -> np.ndarray:
        """The post-freeze curve (reward, or loss for prediction tasks) of eval or a reference."""
        s = self.metrics["eval"] if summary is None else summary
        return np.asarray(s.get("reward_curve", s.get("loss_curve", [])), dtype=float)


@dataclass
class Stat:
    """A metric across seeds: mean, 95% interval and how the interval was obtained."""

    mean: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str  # "t" (over seeds), "bootstrap" (1 seed: over tasks), "none"

    def above_zero(self) -> bool | None:
        """Interval strictly above 0 (None when there is no interval)."""
        return None if self.lo is None else self.lo > 0


@dataclass
class Group:
    """Runs of one condition (all seeds) and their aggregated metrics."""

    key: tuple
    runs: list[Run]
    stats: dict[str, Stat]

    def __getattr__(self, name: str) -> Any:
        if name in CONDITION:
            return self.key[CONDITION.index(name)]
        if name == "variant":
            return self.key[-1]
        raise AttributeError(name)


# libyaml's loader when present: configs of hundreds of runs are read
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_LOADER)
    except (OSError, yaml.YAMLError):
        return None


def read_run(path: Path) -> Run | None:
    """The run in ``path``, or None when it is missing or unfinished (incomplete metrics)."""
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or any(k not in metrics for k in REQUIRED):
        return None
    if any(k not in metrics["eval"] for k in EVAL_REQUIRED):
        return None
    overrides = _load_yaml(path / ".hydra" / "overrides.yaml") or []
    config = _load_yaml(path / ".hydra" / "config.yaml") or {}
    return Run(path.name, path, metrics, [str(o) for o in overrides], config)


def run_dirs(sweep_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Run directories of a sweep (or the directory itself when it is one run)."""
    if (sweep_dir / "metrics.json").exists():
        return [sweep_dir]
    marks = ("metrics.json", ".hydra", "checkpoint.pt")
    out = []
    for p in sorted(sweep_dir.iterdir()):
        if not p.is_dir() or p.name.startswith(".") or (exclude and p.resolve() == exclude):
            continue
        if any((p / m).exists() for m in marks):
            out.append(p)
    return out


def load_sweep(sweep_dir: Path, exclude: Path | None = None) -> tuple[list[Run], list[Path]]:
    """(finished runs, skipped run directories) of a sweep; variants are assigned."""
    dirs = run_dirs(Path(sweep_dir), exclude)
    runs, skipped = [], []
    bar = tqdm(dirs, desc="reading runs", unit="run", disable=True if len(dirs) < 20 else None)
    for d in bar:
        r = read_run(d)
        (runs if r is not None else skipped).append(r if r is not None else d)
    assign_variants(runs)
    return runs, skipped


def _override_dict(overrides: list[str]) -> dict[str, str]:
    out = {}
    for o in overrides:
        if "=" in o:
            k, v = o.split("=", 1)
            out[k.lstrip("+~")] = v
    return out


def _bookkeeping(key: str) -> bool:
    return key.split(".")[0].split("/")[0] in _BOOKKEEPING


def assign_variants(runs: list[Run]) -> list[str]:
    """Set ``run.variant`` from overrides that differ inside a condition group; returns them.

    An override that co-varies with the condition (``arch=lstm``, a width set per arch) does
    not split a group; one that varies among runs of the same condition (a swept learning rate)
    does, so that seeds of different settings are never averaged together.
    """
    per_run = [_override_dict(r.overrides) for r in runs]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(runs):
        groups[tuple(r.metrics[k] for k in CONDITION)].append(i)
    keys = sorted({k for d in per_run for k in d if not _bookkeeping(k)})
    varying = [
        k for k in keys if any(len({per_run[i].get(k) for i in idx}) > 1 for idx in groups.values())
    ]
    for r, d in zip(runs, per_run, strict=True):
        r.variant = " ".join(f"{k}={d.get(k, '(default)')}" for k in varying)
    return varying


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (at least 2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def aggregate(values: list[float | None], ci: list[Any] | None = None) -> Stat:
    """Mean and 95% interval over seeds; with one seed, ``ci`` (its bootstrap interval)."""
    pairs = [
        (v, c)
        for v, c in zip(values, ci or [None] * len(values), strict=True)
        if v is not None and np.isfinite(v)
    ]
    if not pairs:
        return Stat(None, None, None, 0, "none")
    vals = [float(v) for v, _ in pairs]
    if len(vals) >= 2:
        return Stat(float(np.mean(vals)), *t_interval(vals), len(vals), "t")
    c = pairs[0][1]
    if c is None:
        return Stat(vals[0], None, None, 1, "none")
    return Stat(vals[0], float(c[0]), float(c[1]), 1, "bootstrap")


def ideal_reference(runs: list[Run]) -> str | None:
    """The ideal observer present in every run's references (for the regret ratio)."""
    for name in IDEAL_REFERENCES:
        if runs and all(name in r.metrics.get("references", {}) for r in runs):
            return name
    return None


def reference_names(runs: list[Run]) -> list[str]:
    """Every reference name seen, in first-seen order."""
    seen: dict[str, None] = {}
    for r in runs:
        seen.update(dict.fromkeys(r.metrics.get("references", {})))
    return list(seen)


def group_runs(runs: list[Run]) -> list[Group]:
    """Groups of runs by condition (+ variant), each with its metrics aggregated over seeds."""
    by_key: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        by_key[r.key()].append(r)
    ideal = ideal_reference(runs)
    refs = reference_names(runs)
    out = []
    for key, rs in by_key.items():
        rs = sorted(rs, key=lambda r: r.metrics["seed"])
        ev = [r.metrics["eval"] for r in rs]
        st = {
            "improvement": aggregate(
                [e["improvement"] for e in ev], [e["improvement_ci95"] for e in ev]
            ),
            "normalized_improvement": aggregate([e.get("normalized_improvement") for e in ev]),
            "regret": aggregate([e["regret"] for e in ev], [e["regret_ci95"] for e in ev]),
        }
        for name in refs:
            rv = [r.metrics.get("references", {}).get(name) for r in rs]
            st[f"{name}.improvement"] = aggregate(
                [v["improvement"] if v else None for v in rv],
                [v.get("improvement_ci95") if v else None for v in rv],
            )
            st[f"{name}.regret"] = aggregate(
                [v["regret"] if v else None for v in rv],
                [v.get("regret_ci95") if v else None for v in rv],
            )
        st.update(location_ood_stats(rs))
        if ideal:
            ratios = [
                e["regret"] / r.metrics["references"][ideal]["regret"]
                if r.metrics["references"][ideal]["regret"] > 0
                else None
                for e, r in zip(ev, rs, strict=True)
            ]
            st["regret_ratio"] = aggregate(ratios)
        out.append(Group(key, rs, st))
    return sorted(out, key=lambda g: condition_order(g.key))


def location_ood_stats(runs: list[Run]) -> dict[str, Stat]:
    """Location index, its observers' improvements and OOD ``kept`` ratios, over seeds.

    Keys: ``location_index``, ``location_on_line``, ``<observer>.observer_improvement``
    (``train_prior``, ``family_prior``), ``ood.<prior>.improvement``, ``ood.<prior>.kept``
    and ``ood.<prior>.kept_vs_ideal``; present only where some run has them (older runs and
    related training have no index).
    """
    st: dict[str, Stat] = {}
    locs = [r.metrics.get("location") or {} for r in runs]
    if any(loc.get("index") is not None for loc in locs):
        st["location_index"] = aggregate(
            [loc.get("index") for loc in locs], [loc.get("index_ci95") for loc in locs]
        )
        st["location_on_line"] = aggregate([loc.get("on_line") for loc in locs])
    for obs in ("train_prior", "family_prior"):
        vals = [(loc.get("observers") or {}).get(obs) for loc in locs]
        if any(vals):
            st[f"{obs}.observer_improvement"] = aggregate(
                [v["improvement"] if v else None for v in vals],
                [v.get("improvement_ci95") if v else None for v in vals],
            )
    oods = [r.metrics.get("ood") or {} for r in runs]
    for prior in dict.fromkeys(p for o in oods for p in o):
        entries = [o.get(prior) or {} for o in oods]
        st[f"ood.{prior}.improvement"] = aggregate(
            [e.get("improvement") for e in entries], [e.get("improvement_ci95") for e in entries]
        )
        st[f"ood.{prior}.kept"] = aggregate([e.get("kept") for e in entries])
        st[f"ood.{prior}.kept_vs_ideal"] = aggregate([e.get("kept_vs_ideal") for e in entries])
    return st


_ARCH_ORDER = {"lstm": 0, "gru": 1, "slot": 2, "ffn": 3, "transformer": 4}
_TRAINING_ORDER = {"rl": 0, "supervised": 1, "none": 2}
_DIST_ORDER = {"related": 0, "single": 1, "trialwise": 2}


def _pool_size(distribution: str) -> int:
    """K of ``poolK`` (so pools sort by size, not as strings); 0 otherwise."""
    tail = distribution.removeprefix("pool")
    return int(tail) if distribution.startswith("pool") and tail.isdigit() else 0


def condition_rank(training: str, memory: bool, distribution: str) -> tuple:
    """Full condition first, then memory off, the training ablations, the distribution ones."""
    block = (
        0
        if (training, distribution) == ("rl", "related")
        else (1 if distribution == "related" else 2)
    )
    return (
        block,
        _TRAINING_ORDER.get(training, 9),
        training,
        _DIST_ORDER.get(distribution, 9),
        _pool_size(distribution),
        distribution,
        not memory,
    )


def condition_order(key: tuple) -> tuple:
    """Sort key of a group: task, arch (lstm gru slot ffn transformer, then others), condition."""
    task, arch, training, memory, dist, variant = key
    return (task, _ARCH_ORDER.get(arch, 9), arch, variant, condition_rank(training, memory, dist))


def flat_row(run: Run) -> dict[str, Any]:
    """One CSV row: condition, seed, eval metrics, references, training and frozen checks."""
    m = run.metrics
    ev = m["eval"]
    row: dict[str, Any] = {
        "run": run.name,
        **{k: m[k] for k in CONDITION},
        "seed": m["seed"],
        "variant": run.variant,
    }
    for k in (
        "improvement",
        "normalized_improvement",
        "regret",
        "total_reward",
        "num_tasks",
        "num_trials",
    ):
        row[f"eval_{k}"] = ev.get(k)
    for k in ("improvement", "regret"):
        lo, hi = ev[f"{k}_ci95"]
        row[f"eval_{k}_lo"], row[f"eval_{k}_hi"] = lo, hi
    for name, ref in m.get("references", {}).items():
        for k in ("improvement", "regret", "total_reward"):
            row[f"ref_{name}_{k}"] = ref.get(k)
    for k, v in m.get("train", {}).items():
        row[f"train_{k}"] = v
    loc = m.get("location") or {}
    row["location_index"] = loc.get("index")
    row["location_index_lo"], row["location_index_hi"] = loc.get("index_ci95") or (None, None)
    for prior, entry in (m.get("ood") or {}).items():
        for k in ("improvement", "kept", "kept_vs_ideal"):
            row[f"ood_{prior}_{k}"] = entry.get(k)
    row["frozen_verified"] = m.get("frozen", {}).get("verified")
    row["overrides"] = " ".join(run.overrides)
    row["path"] = str(run.path)
    return row


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
