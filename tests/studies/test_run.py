"""The run pipeline end to end: outputs, determinism, failures, resume, W&B offline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mesalab.studies.checkpoint import load_checkpoint
from mesalab.studies.device import full_fp32
from mesalab.studies.loop import TrainingDiverged
from mesalab.studies.record import RunRecord
from mesalab.studies.run import is_finished, run
from mesalab.studies.version import code_state
from tests.studies.conftest import TINY

EVAL_KEYS = {
    "num_tasks",
    "num_trials",
    "reward_curve",
    "improvement",
    "improvement_ci95",
    "normalized_improvement",
    "regret",
    "regret_ci95",
}


def strip_timing(record: RunRecord | dict) -> dict:
    """metrics.json (a record, or as read from disk) without wall times, speeds and finish time."""
    out = record.to_dict() if isinstance(record, RunRecord) else json.loads(json.dumps(record))
    out["train"].pop("wall_s")
    out["train"].pop("env_steps_per_s")
    out.pop("finished", None)
    return out


def test_run_writes_the_design_outputs(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(*TINY, "eval.every=1")
    metrics = run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert list(on_disk) == [
        "version",
        "task",
        "arch",
        "training",
        "memory",
        "distribution",
        "seed",
        "train",
        "eval",
        "references",
        "frozen",
        "location",
        "ood",
        "code",
        "finished",
        "history_inputs",
        "recipe",
        "device",
    ]
    assert on_disk["device"] == f"cpu, torch {torch.__version__}"  # what it trained on
    assert on_disk["history_inputs"] is True  # the default: previous action and reward seen
    assert on_disk["recipe"] == "default"  # lstm under training=rl: no arch recipe
    assert on_disk["code"] == code_state() and len(on_disk["code"]["commit"]) == 40
    assert EVAL_KEYS <= set(on_disk["eval"])
    assert on_disk == metrics.to_dict()
    assert on_disk["frozen"]["verified"] and on_disk["frozen"]["digest_before"]
    assert on_disk["train"]["env_steps"] == 3 * 8 * 12
    assert len(on_disk["eval"]["reward_curve"]) == 12
    assert {"oracle", "random"} <= set(on_disk["references"])
    assert on_disk["references"]["oracle"]["regret"] == pytest.approx(0.0, abs=1e-9)
    curves = np.load(tmp_path / "curves.npz")
    assert curves["curve/learner"].shape == (12,)
    # emergence curve: a point before training and after every update (eval.every=1)
    assert curves["emergence"][:, 0].tolist() == [0, 1, 2, 3]
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["final"] and ck["loop"]["update"] == 3
    assert ck["config"]["arch"]["name"] == "lstm" and ck["code_version"]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_code_version_is_the_one_the_run_started_from(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mesalab.studies.run as run_module

    started = {"commit": "a" * 40, "dirty": False}
    monkeypatch.setattr(run_module, "code_state", lambda: started)
    job = run_module.Run(make_cfg(*TINY), tmp_path)
    # a commit lands while the run trains: the record still names the code it started from
    monkeypatch.setattr(run_module, "code_state", lambda: {"commit": "b" * 40, "dirty": True})
    job.execute()
    assert json.loads((tmp_path / "metrics.json").read_text())["code"] == started
    assert load_checkpoint(tmp_path / "checkpoint.pt")["code_version"] == "a" * 40


def test_same_seed_same_metrics(make_cfg, tmp_path: Path) -> None:
    a = run(make_cfg(*TINY), tmp_path / "a")
    b = run(make_cfg(*TINY), tmp_path / "b")
    c = run(make_cfg(*TINY, "seed=1"), tmp_path / "c")
    assert strip_timing(a) == strip_timing(b)
    assert strip_timing(a)["eval"] != strip_timing(c)["eval"]


def test_finished_run_is_skipped_and_force_reruns(make_cfg, tmp_path: Path) -> None:
    run(make_cfg(*TINY), tmp_path)
    assert is_finished(tmp_path)
    stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
    assert run(make_cfg(*TINY), tmp_path) is None
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp
    assert run(make_cfg(*TINY, "force=true"), tmp_path) is not None


def test_nan_loss_stops_and_keeps_last_good_checkpoint(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        *TINY,
        "training.updates=6",
        "checkpoint_every=1",
        "training.signal._target_=tests.studies.helpers.NaNAfter",
        "+training.signal.after=2",
    )
    with pytest.raises(TrainingDiverged, match="update 2"):
        run(cfg, tmp_path)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["loop"]["update"] == 2 and not ck["final"]
    assert all(torch.isfinite(v).all() for v in ck["learner"].values())
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("training.optimizer.lr=-1", "training.optimizer.lr"),
        ("condition=pool", None),
        ("condition.distribution=sometimes", "condition.distribution"),
        ("training.batch_size=0", "training.batch_size"),
        ("eval.num_tasks=0", "eval.num_tasks"),
        ("device=tpu", "device"),
    ],
)
def test_bad_values_fail_before_training_naming_the_field(make_cfg, tmp_path, override, field):
    overrides = [*TINY, override]
    if override == "condition=pool":
        overrides.append("condition.pool_size=0")
        field = "condition.pool_size"
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        run(make_cfg(*overrides), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_unknown_arch_fails_at_composition(make_cfg) -> None:
    with pytest.raises(Exception, match="arch"):
        make_cfg("arch=no_such_arch")


def _cli(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mesalab.studies.run",
        *TINY[1:],
        f"hydra.run.dir={tmp_path}",
        *extra,
    ]


def test_sigterm_then_resume_finishes_with_same_updates(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    updates = 40
    args = _cli(tmp_path, f"training.updates={updates}", "checkpoint_every=2")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (tmp_path / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 128 + signal.SIGTERM, out  # 143: the shell's stopped-by-SIGTERM
    assert "interrupted by SIGTERM" in out and "resume=true" in out
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert 0 < ck["loop"]["update"] < updates and not ck["final"]
    assert not (tmp_path / "metrics.json").exists()
    done = subprocess.run([*args, "resume=true"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train"]["env_steps"] == updates * 8 * 12
    assert load_checkpoint(tmp_path / "checkpoint.pt")["loop"]["update"] == updates
    # the resumed run is the uninterrupted run: same weights, same evaluation
    ref = tmp_path / "uninterrupted"
    subprocess.run(
        _cli(ref, f"training.updates={updates}", "checkpoint_every=2"),
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert strip_timing(json.loads((ref / "metrics.json").read_text())) == strip_timing(metrics)


def test_wandb_offline_run_can_be_read_back(make_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg(
        *[o for o in TINY if not o.startswith("logger")],
        "logger=wandb",
        "logger.every=1",
        "sweep_name=test-group",
    )
    run(cfg, tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = {p.name for p in runs[0].rglob("*")}
    assert any(name.endswith(".wandb") for name in files)
    inspected = subprocess.run(
        [
            str(Path(sys.executable).with_name("wandb")),
            "leet",
            "inspect",
            "--summary",
            "--json",
            str(runs[0]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inspected.returncode == 0, inspected.stderr
    text = inspected.stdout
    assert "eval/improvement" in text and "eval/regret" in text


def test_full_fp32_turns_tf32_off() -> None:
    """What a CUDA run calls (``resolve_device``): cuDNN's RNNs would otherwise use TF32."""
    cudnn, cublas = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, cublas.allow_tf32
    cudnn.allow_tf32 = cublas.allow_tf32 = True
    try:
        full_fp32()
        assert not cudnn.allow_tf32 and not cublas.allow_tf32
    finally:
        cudnn.allow_tf32, cublas.allow_tf32 = before
