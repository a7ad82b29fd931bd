"""The task-diversity transition: where the location index crosses 0.5, with a seed bootstrap.

A diversity sweep gives, per arch, the location index (0 = task location, 1 = task learning;
``mesalab.studies.policy.location``) of every seed at every pool size K. The threshold K* is
where the mean over seeds, as a function of log2 K, first rises through 0.5: linear
interpolation in log2 K between the last K below 0.5 and the first K at or above it
(Raventos et al. 2023 place their transformer's between K = 2^13 and 2^14).

Its 95% interval is a percentile bootstrap over seeds: at every K the seeds are resampled with
replacement (independently per K: the runs at different K are different trainings), the mean
curve is recomputed and so is its crossing. A resample that never reaches 0.5 counts as
K* = infinity and one that starts at or above it as K* = 0 (below the smallest K), so an
interval can say "above the largest K swept" rather than dropping those resamples; the share
of resamples that crossed inside the sweep is reported next to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mesalab.analysis.sweep import Group, Stat, pool_size

#: the index level that separates the two readings: halfway between the observers
LEVEL = 0.5
NUM_RESAMPLES = 2000


def crossing(ks: list[float], means: list[float], level: float = LEVEL) -> float:
    """log2 K where ``means`` (ascending ``ks``) first reaches ``level``.

    ``-inf``: already at or above it at the smallest K; ``inf``: never reaches it.
    """
    for i, m in enumerate(means):
        if m >= level:
            if i == 0:
                return -math.inf
            x0, x1 = math.log2(ks[i - 1]), math.log2(ks[i])
            m0 = means[i - 1]
            return x0 + (level - m0) * (x1 - x0) / (m - m0)
    return math.inf


@dataclass
class Threshold:
    """K* of one arch: point estimate and seed-bootstrap interval, all as log2 K."""

    log2_k: float  # -inf: at or below the smallest K; inf: not crossed
    lo: float
    hi: float
    crossed_share: float  # resamples whose curve crossed inside the swept K range
    k_min: float
    k_max: float
    seeds: int  # fewest seeds at any K
    max_seeds: int  # most seeds at any K

    @property
    def crossed(self) -> bool:
        """Whether the mean curve crosses the level inside the swept K range."""
        return math.isfinite(self.log2_k)

    def text(self) -> str:
        """``K* = 2^13.4 [2^12.8, > 2^15]`` or ``not crossed (max K 2^15)``."""
        if self.log2_k == math.inf:
            return f"not crossed (index < {LEVEL} up to K = {_pow(self.k_max)})"
        if self.log2_k == -math.inf:
            return f"at or below the smallest K ({_pow(self.k_min)})"
        if self.max_seeds < 2:  # one seed resamples to itself: no interval
            return f"K* = 2^{self.log2_k:.2f} (one seed: no interval)"
        return f"K* = 2^{self.log2_k:.2f} [{self._bound(self.lo)}, {self._bound(self.hi)}]"

    def seeds_text(self) -> str:
        """``3``, or ``1-3`` when the pool sizes have different numbers of seeds."""
        if self.max_seeds > self.seeds:
            return f"{self.seeds}-{self.max_seeds}"
        return str(self.seeds)

    def _bound(self, x: float) -> str:
        if x == math.inf:
            return f"> {_pow(self.k_max)}"
        if x == -math.inf:
            return f"<= {_pow(self.k_min)}"
        return f"2^{x:.2f}"


def _pow(k: float) -> str:
    """``2^13`` for a power of two, else the number."""
    x = math.log2(k)
    return f"2^{x:.0f}" if x == round(x) else f"{k:g}"


def threshold(
    per_k: dict[float, list[float]],
    level: float = LEVEL,
    num_resamples: int = NUM_RESAMPLES,
    seed: int = 0,
) -> Threshold | None:
    """K* from the per-seed index at every finite K (``{K: [index of each seed]}``).

    None with fewer than two pool sizes that have an index.
    """
    ks = sorted(k for k, v in per_k.items() if v and math.isfinite(k))
    if len(ks) < 2:
        return None
    values = [np.asarray(per_k[k], dtype=float) for k in ks]
    point = crossing(ks, [float(v.mean()) for v in values], level)
    rng = np.random.default_rng(seed)
    # (R, len(ks)): each K's seeds resampled on their own
    boot = np.stack(
        [rng.choice(v, size=(num_resamples, len(v)), replace=True).mean(axis=1) for v in values],
        axis=1,
    )
    xs = np.array([crossing(ks, list(row), level) for row in boot])
    # order statistics, not interpolation: the infinite ends must stay infinite
    srt = np.sort(xs)
    lo = float(srt[int(math.floor(0.025 * (num_resamples - 1)))])
    hi = float(srt[int(math.ceil(0.975 * (num_resamples - 1)))])
    return Threshold(
        log2_k=point,
        lo=lo,
        hi=hi,
        crossed_share=float(np.isfinite(xs).mean()),
        k_min=ks[0],
        k_max=ks[-1],
        seeds=min(len(v) for v in values),
        max_seeds=max(len(v) for v in values),
    )


def pool_size_of(distribution: str) -> float | None:
    """K of a distribution tag: ``pool16`` -> 16, ``single`` -> 1, ``related`` -> inf."""
    if k := pool_size(distribution):
        return float(k)
    return {"single": 1.0, "related": math.inf}.get(distribution)


Block = tuple
#: one row of the per-arch threshold table: (task, training, memory, variant) and the arch
SeriesKey = tuple


def index_by_k(gs: list[Group], arch: str) -> dict[float, list[float]]:
    """{K: [location index of each seed]} of one arch's pool groups (finite K, index present)."""
    out: dict[float, list[float]] = {}
    for g in gs:
        k = pool_size_of(g.distribution)
        if g.arch != arch or k is None or not math.isfinite(k):
            continue
        vals = [r.record.location.index for r in g.runs if r.record.location is not None]
        vals = [v for v in vals if v is not None]
        if vals:
            out[k] = vals
    return out


def thresholds(series: dict[SeriesKey, list[Group]]) -> dict[tuple, Threshold]:
    """K* of every (series key, arch) with an index at two or more pool sizes."""
    out = {}
    for key, gs in series.items():
        for arch in dict.fromkeys(g.arch for g in gs):
            t = threshold(index_by_k(gs, arch))
            if t is not None:
                out[(*key, arch)] = t
    return out


def fmt_stat(s: Stat | None) -> str:
    """``mean [lo, hi]`` to 3 digits; the mean alone without an interval; ``–`` for none."""
    if s is None or s.mean is None:
        return "–"
    if s.lo is None:
        return f"{s.mean:.3g}"
    return f"{s.mean:.3g} [{s.lo:.3g}, {s.hi:.3g}]"


def _pair(a: Stat | None, b: Stat | None) -> str:
    """``a / b`` of two means (``–`` for a missing one)."""
    return " / ".join("–" if s is None or s.mean is None else f"{s.mean:.3g}" for s in (a, b))


def transition_blocks(series: dict[SeriesKey, list[Group]]) -> list[Block]:
    """K* per arch, and per K: regret against both observers, OOD retention, probe R^2."""
    ts = thresholds(series)
    blocks: list[Block] = [("h", 3, "The transition: K* where the index crosses 0.5")]
    rows = []
    for (task, training, _memory, _variant, arch), t in ts.items():
        rows.append([task, arch, training, t.seeds_text(), t.text(), f"{t.crossed_share:.2f}"])
    blocks.append(
        (
            "p",
            f"K*: where the mean index over seeds first reaches {LEVEL}, interpolated in "
            "log2 K (mesalab.analysis.transition); interval: percentile bootstrap over seeds "
            "(seeds resampled at every K, the crossing recomputed; a resample that never "
            "reaches 0.5 counts as above the largest K). crossed: the share of resamples that "
            "cross inside the swept range. seeds: per K (a range when the pool sizes have "
            "different numbers; a K with one seed enters every resample unchanged, so the "
            "interval then covers only the seed spread where there are several). Raventos "
            "et al. 2023 (transformer, regression, d = 8): between 2^13 and 2^14.",
        )
    )
    blocks.append(("table", ["task", "arch", "training", "seeds", "K* [95%]", "crossed"], rows))
    priors = list(
        dict.fromkeys(
            k.split(".")[1] for gs in series.values() for g in gs for k in g.stats
            if k.startswith("ood.")
        )
    )  # fmt: skip
    header = ["task", "arch", "K", "seeds", "index [95% over seeds]", "net regret"]
    header += ["training-prior observer regret", "family-prior observer regret"]
    header += [f"{p}: kept vs ideal" for p in priors]
    header += ["probe R² trained / untrained"]
    rows = []
    for gs in series.values():
        for g in sorted(gs, key=lambda g: (g.arch, pool_size_of(g.distribution))):
            k = pool_size_of(g.distribution)
            st = g.stats.get
            row = [g.task, g.arch, "inf" if math.isinf(k) else str(int(k)), str(len(g.runs))]
            row += [fmt_stat(st("location_index")), fmt_stat(st("regret"))]
            row += [fmt_stat(st(f"{o}.observer_regret")) for o in ("train_prior", "family_prior")]
            row += [fmt_stat(st(f"ood.{p}.kept_vs_ideal")) for p in priors]
            row += [_pair(st("probe_r2"), st("probe_control_r2"))]
            rows.append(row)
    blocks.append(
        (
            "p",
            "Per K: the index with its 95% t-interval over seeds (one seed: its bootstrap over "
            "tasks); regret on held-out tasks of the network (the evaluation's tasks) and of "
            "each observer acting on its own (the index's tasks: the first "
            "eval.location_tasks of them); OOD retention relative to the ideal observer "
            "(1 = keeps as much); probe R² of the family observer's posterior from the frozen "
            "network's activations and from the untrained control (mesalab-probe; – where "
            "the runs were not probed).",
        )
    )
    blocks.append(("table", header, rows))
    return blocks
