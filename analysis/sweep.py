"""Read a sweep directory of runs and aggregate them over seeds.

A sweep directory holds one subdirectory per run (``metrics.json``, ``.hydra/``; see
DESIGN.md, "Outputs of a run"). Runs are grouped by condition (task, arch, training, memory,
distribution, plus any other override that varies *within* such a group, the "variant"), and
every metric is summarised across seeds by its mean and a 95% t-interval over the seed means.
With a single seed there is no spread across seeds to use, so the interval falls back to the
run's own bootstrap interval over tasks (and says so).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import OmegaConf
from scipy import stats
from tqdm import tqdm

from mesalab.studies.conditions import arch_has_memory, signal_condition
from mesalab.studies.record import RunRecord, Summary, read_record, record_problem

#: the condition columns of a group, in table order
CONDITION = ("task", "arch", "training", "memory", "distribution", "history_inputs")
#: references whose regret is reported; the oracle's is zero by definition (regret is vs it)
SKIP_REF_REGRET = ("oracle",)
#: the ideal observer used for the regret ratio, first one present
IDEAL_REFERENCES = ("bayes_optimal", "gittins")


def condition_of(record: RunRecord, name: str) -> Any:
    """A condition column of a record (records from before the history switch had it on)."""
    value = getattr(record, name)
    return True if name == "history_inputs" and value is None else value


# overrides that never change what a run computes (bookkeeping, logging, launchers), or that
# change only its random realisation, as a seed does: the device, and the population a run
# trained in (with shared streams its members draw from one stream, so the realisation depends
# on who shares it, but not the setting; runs of one setting from populations of different
# sizes are seeds of that setting)
_BOOKKEEPING = (
    "population",
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
    """One finished run: its directory, record (metrics.json), overrides and (raw) Hydra config."""

    name: str
    path: Path
    record: RunRecord
    overrides: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    variant: str = ""

    @property
    def signal_condition(self) -> str | None:
        """Condition 2 as its signal class says (``rl``, ``supervised``, ``none``); None unknown."""
        training = self.config.get("training") or {}
        return signal_condition(training) if "signal" in training else None

    @property
    def has_memory(self) -> bool | None:
        """Whether the arch has memory at all, as its core class says; None when unknown.

        Runs written before the class said so carry ``arch.has_memory`` in their config.
        """
        arch = self.config.get("arch") or {}
        return arch_has_memory(arch) if "core" in arch else arch.get("has_memory")

    @property
    def arch_order(self) -> int:
        """The arch's ``report_order`` (its config's place in report tables)."""
        return int((self.config.get("arch") or {}).get("report_order", 100))

    def key(self) -> tuple:
        """The group this run belongs to: condition columns plus variant."""
        return (*(condition_of(self.record, k) for k in CONDITION), self.variant)

    def curve(self, summary: Summary | None = None) -> np.ndarray:
        """The post-freeze curve (reward, or loss for prediction tasks) of eval or a reference."""
        s = self.record.eval if summary is None else summary
        return np.asarray(s.curve, dtype=float)


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


#: a seed's regret "near the ideal": at most this times the ideal observer's on the same tasks
NEAR_IDEAL = 2.0


@dataclass
class Learned:
    """How many of a condition's seeds learned: a collapse is counted, not averaged away."""

    n: int
    improved: int  # seeds whose own improvement interval (bootstrap over tasks) lies above 0
    near_ideal: int | None  # seeds with regret <= NEAR_IDEAL x the ideal's (None: no ideal)

    def text(self, ideal: str | None = None) -> str:
        """``k of n improved, k' of n within 2x <ideal>``."""
        out = f"{self.improved} of {self.n} improved"
        if self.near_ideal is not None:
            out += f", {self.near_ideal} of {self.n} within {NEAR_IDEAL:g}x {ideal or 'ideal'}"
        return out


def seeds_learned(runs: list[Run], ideal: str | None) -> Learned:
    """Count the seeds that learned, by their own interval and by their regret vs the ideal."""
    improved = sum(r.record.eval.improvement_ci95[0] > 0 for r in runs)
    near = None
    if ideal is not None:
        near = sum(
            r.record.eval.regret <= NEAR_IDEAL * r.record.references[ideal].regret for r in runs
        )
    return Learned(len(runs), improved, near)


@dataclass
class Group:
    """Runs of one condition (all seeds) and their aggregated metrics."""

    key: tuple
    runs: list[Run]
    stats: dict[str, Stat]
    learned: Learned | None = None
    ideal: str | None = None  # the ideal observer ``learned.near_ideal`` compares with

    @property
    def signal_condition(self) -> str | None:
        """Condition 2 of the group's training signal (see :attr:`Run.signal_condition`)."""
        return self.runs[0].signal_condition

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


def load_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def read_run(path: Path) -> Run | None:
    """The run in ``path``, or None when it is missing or unfinished (no complete record)."""
    record = read_record(path)
    if record is None:
        return None
    overrides = _load_yaml(path / ".hydra" / "overrides.yaml") or []
    config = _load_yaml(path / ".hydra" / "config.yaml") or {}
    return Run(path.name, path, record, [str(o) for o in overrides], config)


def skip_reason(path: Path) -> str:
    """Why :func:`read_run` skips a run directory: metrics.json missing, unreadable, incomplete."""
    return record_problem(path) or "read again: metrics.json is readable now"


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
        groups[tuple(condition_of(r.record, k) for k in CONDITION)].append(i)
    keys = sorted({k for d in per_run for k in d if not _bookkeeping(k)})

    configs = [OmegaConf.create(r.config) for r in runs]

    def setting(i: int, key: str) -> tuple[str | None, str | None]:
        # (what to compare, what to show) for one override: the resolved value at its path in
        # the run's config, so that two spellings of one setting (an override here, a preset's
        # value there) do not split a group; the override as written where the config lacks
        # the path or cannot resolve it. A config group compares by its content and shows
        # the choice as written.
        written = per_run[i].get(key)
        try:
            node = OmegaConf.select(configs[i], key, throw_on_missing=True)
            if OmegaConf.is_config(node):
                content = OmegaConf.to_container(node, resolve=True)
        except Exception:  # noqa: BLE001 - an unresolvable interpolation (a Hydra resolver)
            return written, written
        if node is None:
            return written, written
        if not OmegaConf.is_config(node):
            return str(node), str(node)
        # the group's content, less the paths that other overrides set (they are compared,
        # and named in the variant, on their own)
        for sub in keys:
            if sub.startswith(key + "."):
                *parents, leaf = sub[len(key) + 1 :].split(".")
                parent = content
                for part in parents:
                    parent = parent.get(part) if isinstance(parent, dict) else None
                if isinstance(parent, dict):
                    parent.pop(leaf, None)
        return json.dumps(content, sort_keys=True, default=str), written

    varying = [
        k for k in keys if any(len({setting(i, k)[0] for i in idx}) > 1 for idx in groups.values())
    ]
    for i, r in enumerate(runs):
        r.variant = " ".join(f"{k}={setting(i, k)[1] or '(default)'}" for k in varying)
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
        if runs and all(name in r.record.references for r in runs):
            return name
    return None


def reference_names(runs: list[Run]) -> list[str]:
    """Every reference name seen, in first-seen order."""
    seen: dict[str, None] = {}
    for r in runs:
        seen.update(dict.fromkeys(r.record.references))
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
        rs = sorted(rs, key=lambda r: r.record.seed)
        ev = [r.record.eval for r in rs]
        st = {
            "improvement": aggregate([e.improvement for e in ev], [e.improvement_ci95 for e in ev]),
            "normalized_improvement": aggregate([e.normalized_improvement for e in ev]),
            "regret": aggregate([e.regret for e in ev], [e.regret_ci95 for e in ev]),
        }
        for name in refs:
            rv = [r.record.references.get(name) for r in rs]
            st[f"{name}.improvement"] = aggregate(
                [v.improvement if v else None for v in rv],
                [v.improvement_ci95 if v else None for v in rv],
            )
            st[f"{name}.regret"] = aggregate(
                [v.regret if v else None for v in rv],
                [v.regret_ci95 if v else None for v in rv],
            )
        st.update(location_ood_stats(rs))
        if ideal:
            ratios = [
                e.regret / r.record.references[ideal].regret
                if r.record.references[ideal].regret > 0
                else None
                for e, r in zip(ev, rs, strict=True)
            ]
            st["regret_ratio"] = aggregate(ratios)
        out.append(Group(key, rs, st, seeds_learned(rs, ideal), ideal))
    return sorted(out, key=condition_order)


def location_ood_stats(runs: list[Run]) -> dict[str, Stat]:
    """Location index, its observers' improvements and OOD ``kept`` ratios, over seeds.

    Keys: ``location_index``, ``location_on_line``, ``<observer>.observer_improvement`` and
    ``<observer>.observer_regret`` (``train_prior``, ``family_prior``), ``probe_r2`` and
    ``probe_control_r2`` (from ``probes.json``), ``ood.<prior>.improvement``,
    ``ood.<prior>.kept`` and ``ood.<prior>.kept_vs_ideal``; present only where some run has
    them (older runs and related training have no index, unprobed runs no probe).
    """
    st: dict[str, Stat] = {}
    locs = [r.record.location for r in runs]
    if any(loc is not None and loc.index is not None for loc in locs):
        st["location_index"] = aggregate(
            [loc.index if loc else None for loc in locs],
            [loc.index_ci95 if loc else None for loc in locs],
        )
        st["location_on_line"] = aggregate([loc.on_line if loc else None for loc in locs])
    for obs in ("train_prior", "family_prior"):
        vals = [loc.observers.get(obs) if loc else None for loc in locs]
        if any(vals):
            st[f"{obs}.observer_improvement"] = aggregate(
                [v.improvement if v else None for v in vals],
                [v.improvement_ci95 if v else None for v in vals],
            )
            st[f"{obs}.observer_regret"] = aggregate(
                [v.regret if v else None for v in vals],
                [v.regret_ci95 if v else None for v in vals],
            )
    # what ``mesalab-probe`` left in the run directory (absent: not probed)
    probes = [load_json_object(r.path / "probes.json") for r in runs]
    if any("r2" in p for p in probes):
        st["probe_r2"] = aggregate([p.get("r2") for p in probes])
        st["probe_control_r2"] = aggregate([p.get("control_r2") for p in probes])
    oods = [r.record.ood for r in runs]
    for prior in dict.fromkeys(p for o in oods for p in o):
        entries = [o.get(prior) for o in oods]
        st[f"ood.{prior}.improvement"] = aggregate(
            [e.improvement if e else None for e in entries],
            [e.improvement_ci95 if e else None for e in entries],
        )
        st[f"ood.{prior}.kept"] = aggregate([e.kept if e else None for e in entries])
        st[f"ood.{prior}.kept_vs_ideal"] = aggregate(
            [e.kept_vs_ideal if e else None for e in entries]
        )
    return st


#: condition 2 in table order: trained by reward, trained without it, untrained
_SIGNAL_ORDER = {"rl": 0, "supervised": 1, "none": 2}
_DIST_ORDER = {"related": 0, "single": 1, "trialwise": 2}


def pool_size(distribution: str) -> int:
    """K of ``poolK`` (so pools sort by size, not as strings); 0 otherwise."""
    tail = distribution.removeprefix("pool")
    return int(tail) if distribution.startswith("pool") and tail.isdigit() else 0


def condition_rank(group: Group) -> tuple:
    """Full condition first, then memory off, the training ablations, the distribution ones."""
    signal, dist = group.signal_condition, group.distribution
    block = 0 if (signal, dist) == ("rl", "related") else (1 if dist == "related" else 2)
    return (
        block,
        _SIGNAL_ORDER.get(signal or "", 9),
        group.training,
        _DIST_ORDER.get(dist, 9),
        pool_size(dist),
        dist,
        not group.memory,
        not group.history_inputs,
    )


def condition_order(group: Group) -> tuple:
    """Sort key of a group: task, arch (by its ``report_order``, then name), condition."""
    arch_order = group.runs[0].arch_order
    return (group.task, arch_order, group.arch, group.variant, condition_rank(group))
