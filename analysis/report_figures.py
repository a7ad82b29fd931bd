"""Figures of the sweep report: improvement per arch x condition, and curves vs references."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from mesalab.analysis.sweep import Group, condition_rank

REF_STYLE = {"linestyle": "--", "linewidth": 1.2}


def condition_label(g: Group) -> str:
    """Short label of a group's condition (without task and arch)."""
    mem = f"mem-{'on' if g.memory else 'off'}" + ("" if g.history_inputs else " no-hist")
    label = f"{mem}\n{g.training}\n{g.distribution}"
    return label + (f"\n{g.variant}" if g.variant else "")


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def improvement_figure(groups: list[Group], path: Path) -> Path:
    """Bars of post-freeze improvement (95% interval) per condition and arch; a panel per task."""
    tasks = list(dict.fromkeys(g.task for g in groups))
    archs = list(dict.fromkeys(g.arch for g in groups))
    colors = {a: colormaps["tab10"](i % 10) for i, a in enumerate(archs)}
    ncond = max(len({condition_label(g) for g in groups if g.task == t}) for t in tasks)
    # Figure (not pyplot): no global backend or figure state, safe inside any process
    fig = Figure(
        figsize=(max(6.0, 0.55 * ncond * max(1, len(archs)) ** 0.5 + 2), 3.6 * len(tasks)),
        layout="constrained",
    )
    axes = fig.subplots(len(tasks), 1, squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        gs = [g for g in groups if g.task == task]
        # one x position per condition, in the same order whatever arch ran it first
        gs_sorted = sorted(gs, key=condition_rank)
        labels = list(dict.fromkeys(condition_label(g) for g in gs_sorted))
        width = 0.8 / max(1, len(archs))
        for j, arch in enumerate(archs):
            xs, ys, err = [], [], []
            for g in gs:
                s = g.stats["improvement"]
                if g.arch != arch or s.mean is None:
                    continue
                xs.append(labels.index(condition_label(g)) + (j - (len(archs) - 1) / 2) * width)
                ys.append(s.mean)
                lo = s.mean - s.lo if s.lo is not None else 0.0
                hi = s.hi - s.mean if s.hi is not None else 0.0
                err.append((lo, hi))
            if xs:
                e = np.asarray(err).T  # (2, N): below, above
                ax.bar(xs, ys, width, yerr=e, capsize=2, color=colors[arch], label=arch)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylabel("post-freeze improvement")
        ax.set_title(task)
        ax.legend(fontsize=8, ncols=min(4, len(archs)))
    fig.savefig(path, dpi=110)
    return path


def _mean_curve(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and spread (sd across seeds, 0 with one) of the curves of the modal length."""
    curves = [c for c in curves if c.size]
    if not curves:
        return None
    n = Counter(len(c) for c in curves).most_common(1)[0][0]
    stack = np.stack([c for c in curves if len(c) == n])  # (S, T)
    sd = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros(n)
    return stack.mean(axis=0), sd


def curves_figure(groups: list[Group], title: str, path: Path) -> Path:
    """One panel per condition: the learner's mean curve over seeds against each reference's."""
    n = len(groups)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    refs = list(dict.fromkeys(k for g in groups for r in g.runs for k in r.record.references))
    ref_colors = {name: colormaps["Dark2"](i % 8) for i, name in enumerate(refs)}
    loss = any(r.record.eval.loss_curve is not None for g in groups for r in g.runs)
    for ax, g in zip(axes.flat, groups, strict=False):
        for name in refs:
            mc = _mean_curve(
                [r.curve(r.record.references[name]) for r in g.runs if name in r.record.references]
            )
            if mc is not None:
                ax.plot(mc[0], color=ref_colors[name], label=name, **REF_STYLE)
        mc = _mean_curve([r.curve() for r in g.runs])
        if mc is not None:
            t = np.arange(len(mc[0]))
            ax.plot(t, mc[0], color="black", linewidth=1.8, label="learner (mean over seeds)")
            ax.fill_between(t, mc[0] - mc[1], mc[0] + mc[1], color="black", alpha=0.15)
        seeds = f"{len(g.runs)} seed" + ("s" if len(g.runs) > 1 else "")
        ax.set_title(condition_label(g).replace("\n", " · ") + f" ({seeds})", fontsize=9)
        ax.set_xlabel("trial")
    axes.flat[0].legend(fontsize=6)  # the same lines in every panel: one legend
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("loss" if loss else "expected reward")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path
