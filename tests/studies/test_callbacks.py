"""A run as an object: its callbacks observe training and never move its results."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mesalab.studies.callbacks import (
    Callback,
    Checkpointing,
    Emergence,
    ProgressBar,
    default_callbacks,
)
from mesalab.studies.checkpoint import load_checkpoint
from mesalab.studies.errors import Interrupted
from mesalab.studies.loop import LoopState
from mesalab.studies.run import Run
from tests.studies.conftest import TINY
from tests.studies.test_run import strip_timing


class StopAt(Callback):
    """Asks to stop once ``update`` updates are done; counts what it saw."""

    def __init__(self, update: int) -> None:
        self.update, self.seen, self.ended = update, [], False

    def on_update(self, run, state: LoopState, metrics: dict[str, float]) -> bool:
        self.seen.append(state.update)
        return state.update < self.update

    def on_end(self, run) -> None:
        self.ended = True


def test_callbacks_do_not_move_results(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(*TINY, "eval.every=1", "checkpoint_every=1")
    full = Run(cfg, tmp_path / "all").execute()
    bare = Run(cfg, tmp_path / "none", callbacks=[]).execute()
    assert strip_timing(full) == strip_timing(bare)
    assert [type(c) for c in default_callbacks()].count(Emergence) == 1


def test_a_callback_stops_training_with_a_checkpoint(make_cfg, tmp_path: Path) -> None:
    stop = StopAt(2)
    run = Run(make_cfg(*TINY), tmp_path, callbacks=[stop, Checkpointing()])
    with pytest.raises(Interrupted, match="interrupted at update 2"):
        run.execute()
    assert stop.seen == [1, 2] and stop.ended and run.state.update == 2
    assert not (tmp_path / "metrics.json").exists()  # an interrupted run is not finished


def test_the_checkpoint_callback_saves_on_schedule(make_cfg, tmp_path: Path) -> None:
    run = Run(
        make_cfg(*TINY, "checkpoint_every=2"), tmp_path, callbacks=[StopAt(2), Checkpointing()]
    )
    with pytest.raises(Interrupted):
        run.execute()
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["loop"]["update"] == 2 and not ck["final"]


@pytest.mark.parametrize("progress", [False, True])
def test_without_a_bar_a_run_logs_its_progress_ten_times(
    make_cfg, tmp_path: Path, caplog, progress: bool
) -> None:
    """progress=false (a study's parallel jobs) logs a line every tenth of the training, so a
    long population is seen to move; with the bar on, the bar says it and nothing is logged."""
    cfg = make_cfg(*TINY, "training.updates=20", f"progress={str(progress).lower()}")
    with caplog.at_level(logging.INFO, logger="mesalab.studies.callbacks"):
        Run(cfg, tmp_path, callbacks=[ProgressBar()]).execute()
    lines = [r.getMessage() for r in caplog.records if "updates/s" in r.getMessage()]
    if progress:
        assert lines == []
        return
    assert [line.split(": update ")[1].split(",")[0] for line in lines] == [
        f"{u}/20" for u in range(2, 21, 2)
    ]
    assert all(line.startswith(cfg.run_name) and "to go" in line for line in lines)
