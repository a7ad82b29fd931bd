"""Per-run figure: the learner's post-freeze curve against every reference."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(curves: dict[str, np.ndarray], path: Path, title: str, ylabel: str) -> Path:
    """Write a PNG of per-trial curves, the learner drawn on top in black."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        if name == "learner":
            continue
        ax.plot(np.arange(1, len(curve) + 1), curve, lw=1.2, alpha=0.8, label=name)
    if "learner" in curves:
        c = curves["learner"]
        ax.plot(np.arange(1, len(c) + 1), c, color="black", lw=2.2, label="learner (frozen)")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
