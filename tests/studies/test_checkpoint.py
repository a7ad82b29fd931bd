"""Checkpoints load safely (tensors and plain values only), name the file when broken, and
leave no orphan temporary files behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mesalab.analysis.analyze import main as analyze_main
from mesalab.studies.checkpoint import load_checkpoint, remove_orphans, save_checkpoint
from mesalab.studies.errors import CheckpointError
from mesalab.studies.load import load_run
from mesalab.studies.run import run
from tests.studies.conftest import TINY


class WritesMarker:
    """Unpickling this runs code: it writes a marker file (what a crafted checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def finished(make_cfg, tmp_path: Path) -> Path:
    """A finished tiny run directory."""
    run_dir = tmp_path / "run"
    run(make_cfg(*TINY), run_dir)
    return run_dir


def test_checkpoints_hold_only_tensors_and_plain_values(finished: Path) -> None:
    ck = torch.load(finished / "checkpoint.pt", weights_only=True)  # what load_checkpoint does
    assert ck["config"]["seed"] == 0 and isinstance(ck["loop"]["update"], int)
    assert isinstance(ck["rng"]["env"], torch.Tensor)


def test_a_pickled_object_is_refused_and_never_executed(make_cfg, finished: Path) -> None:
    marker = finished.parent / "marker"
    ck = load_checkpoint(finished / "checkpoint.pt")
    torch.save(
        {**ck, "config": {**ck["config"], "extra": WritesMarker(marker)}},
        finished / "checkpoint.pt",
    )
    (finished / "metrics.json").unlink()  # so that resume=true reads the checkpoint

    with pytest.raises(CheckpointError, match="holds pickled Python objects") as err:
        load_checkpoint(finished / "checkpoint.pt")
    assert str(finished / "checkpoint.pt") in str(err.value)
    assert "GLOBAL exec" in str(err.value)
    with pytest.raises(CheckpointError, match="refused"):
        load_run(finished)  # what mesalab-analyze and mesalab-probe call
    assert analyze_main([str(finished), "--tasks", "8"]) == 2
    with pytest.raises(CheckpointError, match="refused"):
        run(make_cfg(*TINY, "resume=true"), finished)
    assert not marker.exists()
    # the file really would run code if unpickled: the refusal is what prevented it
    torch.load(finished / "checkpoint.pt", weights_only=False)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_broken_checkpoint_is_named(make_cfg, finished: Path, damage: str) -> None:
    path = finished / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"x" * 99}[damage]
    )
    (finished / "metrics.json").unlink()
    with pytest.raises(CheckpointError) as err:
        run(make_cfg(*TINY, "resume=true"), finished)
    assert str(err.value).startswith(f"checkpoint {path} is unreadable")
    with pytest.raises(CheckpointError, match="is unreadable"):
        load_run(finished)


def test_a_dict_that_is_not_a_run_checkpoint_is_named(tmp_path: Path) -> None:
    torch.save({"learner": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a mesalab-run checkpoint: it lacks optimizer"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_truncated_checkpoint_on_the_command_line_exits_2_naming_the_file(finished: Path) -> None:
    path = finished / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    (finished / "metrics.json").unlink()
    env = {**os.environ, "WANDB_MODE": "disabled"}
    args = [sys.executable, "-m", "mesalab.studies.run", *TINY, f"hydra.run.dir={finished}"]
    done = subprocess.run(
        [*args, "resume=true"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: checkpoint {path} is unreadable (truncated or corrupt")
    assert "Traceback" not in done.stderr


def _orphans(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob(".checkpoint.pt.*.tmp"))


def test_orphan_temporary_files_go_at_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    for name in ("a1b2", "c3d4"):
        (tmp_path / f".checkpoint.pt.{name}.tmp").write_bytes(b"x" * 1000)
    other = tmp_path / ".metrics.json.e5f6.tmp"  # another file's: not this save's to remove
    other.write_text("{")
    save_checkpoint(path, {"x": torch.ones(3)})
    assert _orphans(tmp_path) == [] and other.exists()
    assert load_checkpoint.__module__ and torch.load(path, weights_only=True)["x"].sum() == 3
    assert remove_orphans(tmp_path / "nothing_here" / "checkpoint.pt") == []


def test_orphan_temporary_files_go_at_resume(make_cfg, finished: Path) -> None:
    (finished / "metrics.json").unlink()
    orphan = finished / ".checkpoint.pt.k1ll3d.tmp"
    orphan.write_bytes(b"half a checkpoint")
    # checkpoint_every=0 and a final checkpoint: resume trains nothing and saves nothing more
    # before evaluating, so only the resume itself can have removed the orphan
    before = (finished / "checkpoint.pt").stat().st_mtime_ns
    metrics = run(make_cfg(*TINY, "resume=true"), finished)
    assert metrics is not None and not orphan.exists()
    assert (finished / "checkpoint.pt").stat().st_mtime_ns != before  # saved again at the end
