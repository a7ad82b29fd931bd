"""Weights & Biases logging, offline by default; a no-op logger when ``logger=none``.

The mode is always set explicitly: with no server, W&B's online mode blocks for about 90 s
before failing. Run names, groups and tags are chosen so that ablation reports can group runs
by arch, training, memory and distribution.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np


class NullLogger:
    """Logs nothing (``logger=none``)."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Discard training metrics."""

    def log_eval(self, curves: dict[str, np.ndarray], summary: dict[str, Any], png: Path) -> None:
        """Discard evaluation results."""

    def finish(self) -> None:
        """Nothing to close."""


class WandbLogger(NullLogger):
    """One W&B run per mesalab run, named and tagged for ablation reports."""

    def __init__(
        self,
        *,
        mode: str,
        project: str,
        entity: str | None,
        group: str,
        job_type: str,
        name: str,
        tags: list[str],
        config: dict[str, Any],
        run_dir: Path,
        reinit: str = "finish_previous",  # "create_new": a population's runs are open together
    ) -> None:
        import wandb

        # WANDB_MODE from the environment wins (tests use WANDB_MODE=disabled).
        mode = os.environ.get("WANDB_MODE", mode)
        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
        self.run = wandb.init(
            mode=mode,
            project=project,
            entity=entity,
            group=group,
            job_type=job_type,
            name=name,
            tags=tags,
            config=config,
            dir=str(run_dir),
            id=run_id,
            resume="allow",
            reinit=reinit,
            settings=wandb.Settings(console="off", silent=True),
        )
        self._wandb = wandb

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Namespaced training metrics (``train/``, ``losses/``, ``charts/``, ``emergence/``)."""
        self.run.log(metrics, step=step)

    def log_eval(self, curves: dict[str, np.ndarray], summary: dict[str, Any], png: Path) -> None:
        """Evaluation curves as a table and line plot, the PNG, and the summary numbers."""
        wandb = self._wandb
        names = list(curves)
        rows = [[n, t, float(curves[n][t])] for n in names for t in range(len(curves[n]))]
        table = wandb.Table(columns=["policy", "trial", "value"], data=rows)
        xs = list(range(len(next(iter(curves.values())))))
        plot = wandb.plot.line_series(
            xs=xs,
            ys=[curves[n].tolist() for n in names],
            keys=names,
            title="post-freeze curve",
            xname="trial",
        )
        self.run.log(
            {"eval/curves": table, "eval/curve_plot": plot, "eval/png": wandb.Image(str(png))}
        )
        for key, value in summary.items():
            self.run.summary[key] = value

    def finish(self) -> None:
        """Close the run (offline runs stay under the run directory for ``wandb sync``)."""
        self.run.finish()
