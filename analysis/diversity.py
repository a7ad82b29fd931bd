"""Report blocks for task-diversity sweeps (location or learning?) and OOD evaluation.

When a sweep holds ``pool(K)`` runs, the report plots against K (log2 axis), per arch:

- the location-learning index (``mesalab.studies.policy.location``: 0 = acts like the Bayes
  observer whose prior is the K training tasks, 1 = like the family-prior one): the mean over
  seeds with its 95% interval over seeds (a band), every run with its own 95% bootstrap
  interval over tasks (axis clipped to [-0.5, 1.5]), and the threshold K* where the mean
  crosses 0.5 with its seed-bootstrap interval (``mesalab.analysis.transition``), also tabled
  with, per K, the regret against both observers, OOD retention and probe R^2;
- the post-freeze improvement on held-out (never trained) tasks, next to what each observer
  itself achieves on those tasks (black: the training-prior observer, a curve in K; grey: the
  family-prior observer), and ``related`` training (K = infinity) as a dashed line.

Every run also carries its OOD evaluation: a table gives, per condition and OOD prior, the
fraction of the in-distribution improvement kept there, and the same relative to an ideal
observer (``kept_vs_ideal``, 1 = keeps as much as the ideal does).
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from mesalab.analysis.sweep import Group
from mesalab.analysis.transition import (
    Threshold,
    fmt_stat,
    pool_size_of,
    thresholds,
    transition_blocks,
)

Block = tuple


def diversity_groups(groups: list[Group]) -> dict[tuple, list[Group]]:
    """Groups of a diversity sweep by (task, training, memory, variant), each sorted by K."""
    out: dict[tuple, list[Group]] = {}
    if not any(g.distribution.startswith("pool") for g in groups):
        return out
    for g in groups:
        if pool_size_of(g.distribution) is None:
            continue
        out.setdefault((g.task, g.training, g.memory, g.variant), []).append(g)
    return {k: sorted(v, key=lambda g: pool_size_of(g.distribution)) for k, v in out.items()}


def _series(gs: list[Group], key: str) -> tuple[list[float], list[float], list[tuple]]:
    """(K, mean, (below, above)) of a stat over the finite-K groups that have it."""
    xs, ys, err = [], [], []
    for g in gs:
        k, s = pool_size_of(g.distribution), g.stats.get(key)
        if s is None or s.mean is None or not math.isfinite(k):
            continue
        xs.append(k)
        ys.append(s.mean)
        err.append((s.mean - s.lo, s.hi - s.mean) if s.lo is not None else (0.0, 0.0))
    return xs, ys, err


def _run_points(gs: list[Group], key: str) -> tuple[list[float], list[float], list[tuple]]:
    """(K, value, (below, above)) of every run at finite K: its own value and interval."""
    xs, ys, err = [], [], []
    for g in gs:
        k = pool_size_of(g.distribution)
        if not math.isfinite(k):
            continue
        for r in g.runs:
            if key == "location_index":
                loc = r.record.location
                value, ci = (loc.index, loc.index_ci95) if loc else (None, None)
            else:
                value, ci = getattr(r.record.eval, key), getattr(r.record.eval, f"{key}_ci95", None)
            if value is None:
                continue
            # spread the seeds a little along x so that their intervals do not overlap
            xs.append(k * 2 ** (0.08 * (r.record.seed % 5 - 2)))
            ys.append(value)
            err.append((value - ci[0], ci[1] - value) if ci else (0.0, 0.0))
    return xs, ys, err


def diversity_figure(
    series: dict[tuple, list[Group]], path: Path, ks: dict[tuple, Threshold] | None = None
) -> Path:
    """Index and improvement against K, a row per (task, training, memory, variant).

    The index panel shades each arch's 95% interval over seeds and marks its K* (``ks``, from
    :func:`mesalab.analysis.transition.thresholds`) with its bootstrap interval.
    """
    ks = ks or {}
    fig = Figure(figsize=(10.0, 3.4 * len(series)), layout="constrained")
    axes = fig.subplots(len(series), 2, squeeze=False)
    for row, (key, gs) in zip(axes, series.items(), strict=True):
        task, training, memory, variant = key
        archs = list(dict.fromkeys(g.arch for g in gs))
        colors = {a: colormaps["tab10"](i % 10) for i, a in enumerate(archs)}
        for arch in archs:
            mine = [g for g in gs if g.arch == arch]
            for ax, stat in zip(row, ("location_index", "improvement"), strict=True):
                xs, ys, err = _series(mine, stat)
                if xs:
                    label = f"{arch} (mean over seeds)"
                    ax.plot(xs, ys, marker="o", color=colors[arch], label=label)
                if xs and stat == "location_index":
                    # the interval over seeds (t; one seed: over tasks) as a band
                    lo = [y - e[0] for y, e in zip(ys, err, strict=True)]
                    hi = [y + e[1] for y, e in zip(ys, err, strict=True)]
                    ax.fill_between(xs, lo, hi, color=colors[arch], alpha=0.15, lw=0)
                # every run with its own bootstrap interval over tasks: with few seeds a
                # t-interval over seeds says little, the runs themselves say more
                px, py, pe = _run_points(mine, stat)
                if px:
                    e = list(zip(*pe, strict=True))
                    ax.errorbar(px, py, yerr=e, fmt=".", color=colors[arch], alpha=0.45,
                                capsize=1.5, elinewidth=0.8)  # fmt: skip
            t = ks.get((*key, arch))
            if t is not None and t.crossed:
                # K* and its bootstrap interval, clipped to the swept range
                lo, hi = (2 ** min(max(x, math.log2(t.k_min)), math.log2(t.k_max))
                          for x in (t.lo, t.hi))  # fmt: skip
                row[0].axvspan(lo, hi, color=colors[arch], alpha=0.1, lw=0)
                row[0].axvline(2**t.log2_k, color=colors[arch], ls="--", lw=1,
                               label=f"{arch} K* = 2^{t.log2_k:.1f}")  # fmt: skip
            related = [g for g in mine if g.distribution == "related"]
            s = related[0].stats["improvement"] if related else None
            if s is not None and s.mean is not None:
                label = f"{arch} related (K=inf)"
                row[1].axhline(s.mean, color=colors[arch], linestyle="--", lw=1, label=label)
        for obs, color, label in (
            ("train_prior", "black", "training-prior observer"),
            ("family_prior", "grey", "family-prior observer"),
        ):
            # The observers do not depend on the arch (same pools and tasks per seed): one
            # curve, the mean over archs at each K.
            by_k: dict[float, list[float]] = {}
            for x, y in zip(*_series(gs, f"{obs}.observer_improvement")[:2], strict=True):
                by_k.setdefault(x, []).append(y)
            pools = sorted(by_k)
            if pools:
                means = [sum(by_k[k]) / len(by_k[k]) for k in pools]
                row[1].plot(pools, means, color=color, linestyle=":", marker=".", label=label)
        title = f"{task} / {training} / mem-{'on' if memory else 'off'}"
        title += f" / {variant}" if variant else ""
        row[0].axhline(0.0, color="black", linewidth=0.6)
        row[0].axhline(1.0, color="black", linewidth=0.6)
        row[0].axhline(0.5, color="black", linewidth=0.5, linestyle=":")  # K*'s level
        row[0].set_ylabel("location (0) – learning (1) index")
        lo, hi = row[0].get_ylim()
        row[0].set_ylim(max(lo, -0.5), min(hi, 1.5))  # past the observers: clipped
        row[1].axhline(0.0, color="black", linewidth=0.6)
        row[1].set_ylabel("post-freeze improvement, unseen tasks")
        for ax in row:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("K (training tasks)")
            ax.set_title(title, fontsize=9)
        row[0].legend(fontsize=7)
        row[1].legend(fontsize=6)
    fig.savefig(path, dpi=110)
    return path


def diversity_blocks(groups: list[Group], figs: Path) -> list[Block]:
    """The task-diversity section (empty when the sweep has no pool runs)."""
    series = diversity_groups(groups)
    if not series:
        return []
    diversity_figure(series, figs / "task_diversity.png", thresholds(series))
    header = ["task", "arch", "training", "K", "seeds", "index [95%]", "on line"]
    header += ["improvement [95%]"]
    header += ["training-prior observer", "family-prior observer"]
    rows = []
    for gs in series.values():
        for g in sorted(gs, key=lambda g: (g.arch, pool_size_of(g.distribution))):
            k = pool_size_of(g.distribution)
            stats = ["location_index", "location_on_line", "improvement"]
            stats += ["train_prior.observer_improvement", "family_prior.observer_improvement"]
            k_text = "inf" if math.isinf(k) else str(int(k))
            rows.append(
                [g.task, g.arch, g.training, k_text, str(len(g.runs))]
                + [fmt_stat(g.stats.get(name)) for name in stats]
            )
    return [
        ("h", 2, "Task diversity: task location or task learning?"),
        (
            "p",
            "Index: where the frozen network's actions sit, teacher-forced on its own history "
            "on held-out tasks, between the Bayes observer whose prior is its K training tasks "
            "(0, task location) and the one whose prior is the whole family (1, task "
            "learning); steps weighted by how much the observers disagree "
            "(mesalab.studies.policy.location); "
            "on line: the share of the network's departure from the first observer that lies "
            "along the line to the second (near 0: neither observer describes it). "
            "Related training (K = inf) has no index: its two observers coincide. Improvement "
            "is post-freeze on unseen tasks; the observer columns are each observer's own "
            "improvement on the same tasks.",
        ),
        ("img", "figures/task_diversity.png", "index and improvement against K"),
        ("table", header, rows),
        *transition_blocks(series),
    ]


def ood_blocks(groups: list[Group]) -> list[Block]:
    """Per condition and OOD prior: improvement, kept, kept relative to the ideal."""
    priors = list(
        dict.fromkeys(k.split(".")[1] for g in groups for k in g.stats if k.startswith("ood."))
    )
    if not priors:
        return []
    header = ["task", "arch", "training", "distribution", "in-distribution improvement"]
    header += [f"{p}: improvement / kept / kept vs ideal" for p in priors]
    rows = []
    for g in groups:
        row = [g.task, g.arch, g.training, g.distribution, fmt_stat(g.stats["improvement"])]
        for p in priors:
            parts = [g.stats.get(f"ood.{p}.{k}") for k in ("improvement", "kept", "kept_vs_ideal")]
            row.append(" / ".join(fmt_stat(s) for s in parts))
        rows.append(row)
    return [
        ("h", 2, "Out-of-distribution priors"),
        (
            "p",
            "Every run is also evaluated on its family's named OOD priors (fewer tasks). kept "
            "= OOD improvement / in-distribution improvement (shown only where the latter's "
            "interval is above 0); kept vs ideal divides that by the same ratio of the "
            "family's ideal reference (some priors leave less to learn), 1 = keeps as much.",
        ),
        ("table", header, rows),
    ]
