"""What a run does around its training loop: progress, logging, emergence curve, checkpoints, stop.

Each is a :class:`Callback` the :class:`mesalab.studies.run.Run` calls at the start of training,
after every update (in list order; any ``False`` stops training) and at the end of training.
None of them touches the training generators, so adding or removing one cannot move results.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from mesalab.archs.base import Learner
from mesalab.studies.checkpoint import save_checkpoint
from mesalab.studies.errors import launcher_gone
from mesalab.studies.evaluate import curve_of, evaluate_learner, heldout_tasks
from mesalab.studies.loop import LoopState
from mesalab.studies.wandb_logger import NullLogger
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.distributions import TaskDistribution, stream_seed

log = logging.getLogger(__name__)


class Run(Protocol):
    """What a callback may use of :class:`mesalab.studies.run.Run` (which holds the callbacks)."""

    cfg: DictConfig
    device: torch.device
    family: TaskFamily
    distribution: TaskDistribution
    learner: Learner
    state: LoopState
    updates: int
    logger: NullLogger
    checkpoint_path: Path

    def payload(self, final: bool) -> dict[str, Any]:
        """The checkpoint dictionary."""
        ...


class Callback:
    """A hook into the training loop of one run; every method is optional."""

    def on_start(self, run: Run) -> None:
        """Before the first update (also on resume)."""

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """After every update; ``False`` stops training after this update."""
        return True

    def on_end(self, run: Run) -> None:
        """After training, also when it stopped early or failed."""


class ProgressBar(Callback):
    """A tqdm bar over the updates, with steps per second and the training reward.

    With the bar off (``progress=false``, as in the studies' parallel jobs, whose bars would
    overwrite each other) a log line every tenth of the training says how far it got, so a
    long population shows progress in its job's log rather than nothing until it ends.
    """

    LINES = 10  # log lines over a run's training when the bar is off

    def on_start(self, run: Run) -> None:
        """Open the bar at the resumed update."""
        self.bar = tqdm(
            total=run.updates,
            initial=run.state.update,
            disable=not run.cfg.progress or run.updates == 0,
            desc=run.cfg.run_name,
            unit="upd",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self.every = max(1, run.updates // self.LINES) if self.bar.disable else 0
        self.start = (time.monotonic(), run.state.update)

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """Advance and show the latest numbers."""
        self.bar.update(1)
        self.bar.set_postfix(
            sps=f"{metrics['charts/steps_per_s']:.0f}", reward=f"{metrics['train/mean_reward']:.3f}"
        )
        if self.every and state.update % self.every == 0:
            t0, u0 = self.start
            rate = (state.update - u0) / max(time.monotonic() - t0, 1e-9)  # updates per second
            log.info(
                "%s: update %d/%d, %.2f updates/s, training reward %.3f, about %.0f s to go",
                run.cfg.run_name,
                state.update,
                run.updates,
                rate,
                metrics["train/mean_reward"],
                (run.updates - state.update) / rate if rate > 0 else float("nan"),
            )
        return True

    def on_end(self, run: Run) -> None:
        """Close the bar."""
        self.bar.close()


class LogMetrics(Callback):
    """Training metrics to the run's logger every ``logger.every`` updates and at the last."""

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """Log on the schedule."""
        if state.update % run.cfg.logger.every == 0 or state.update == run.updates:
            run.logger.log(metrics, step=state.update)
        return True


class Emergence(Callback):
    """The emergence curve: the frozen-style evaluation every ``eval.every`` updates.

    It uses its own, smaller held-out set from the ``emergence`` stream of the run's seed; its
    points live in the loop state (so they survive a resume) and end up in ``curves.npz``.
    """

    def on_start(self, run: Run) -> None:
        """Draw the curve's tasks; the point before training unless resumed past it."""
        cfg = run.cfg
        self.seed = stream_seed(cfg.seed, "emergence")
        self.latent = heldout_tasks(run.distribution, cfg.eval.curve_tasks, self.seed, run.device)
        self.points = run.state.history.setdefault("emergence", [])
        if cfg.eval.every and not self.points:
            self.point(run, 0)

    def point(self, run: Run, update: int) -> None:
        """One evaluation of the current weights, recorded and logged."""
        ev = evaluate_learner(run.learner, run.family, self.latent, self.seed, run.cfg.eval.greedy)
        self.points.append([update, ev.improvement, ev.regret, *curve_of(ev).tolist()])
        run.logger.log(
            {"emergence/improvement": ev.improvement, "emergence/regret": ev.regret}, step=update
        )

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """A point every ``eval.every`` updates."""
        if run.cfg.eval.every and state.update % run.cfg.eval.every == 0:
            self.point(run, state.update)
        return True


class Checkpointing(Callback):
    """A checkpoint every ``checkpoint_every`` updates (the final one is the run's own)."""

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """Save on the schedule."""
        if run.cfg.checkpoint_every and state.update % run.cfg.checkpoint_every == 0:
            save_checkpoint(run.checkpoint_path, run.payload(final=False))
        return True


class StopOnSignal(Callback):
    """SIGTERM/SIGINT become a stop after the current update, with a checkpoint to resume from.

    A run in a worker of a process pool (joblib's loky workers under ``hydra/launcher=joblib``)
    also stops, as if by SIGTERM, once the process that started the pool is gone (and its process
    then exits): a sweep stopped by signalling its parent would otherwise leave its workers
    training on, unowned.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0  # the signal that came (the run exits with 128 + it)
        self._old: dict[int, Any] = {}

    def on_start(self, run: Run) -> None:
        """Install the handlers."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some launchers): no handler
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested, self.signum = True, signum

    def on_update(self, run: Run, state: LoopState, metrics: dict[str, float]) -> bool:
        """Checkpoint and stop once a signal came (or the pool's parent is gone)."""
        if not self.requested and launcher_gone():
            log.warning(
                "%s: the sweep that launched it is gone; stopping as if by SIGTERM",
                run.cfg.run_name,
            )
            self.requested, self.signum = True, int(signal.SIGTERM)
        if self.requested:
            save_checkpoint(run.checkpoint_path, run.payload(final=False))
            run.stop_signal = self.signum
            return False
        return True

    def on_end(self, run: Run) -> None:
        """Restore the previous handlers."""
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def default_callbacks() -> list[Callback]:
    """Every run's callbacks, in the order they act after an update."""
    return [ProgressBar(), LogMetrics(), Emergence(), Checkpointing(), StopOnSignal()]
