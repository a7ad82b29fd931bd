"""Record small runs' outputs, and compare two such records: "results do not move" for refactors.

    python -m tests.studies.results_fixed record /tmp/baseline14     # before the change
    python -m tests.studies.results_fixed record /tmp/after14        # after it
    python -m tests.studies.results_fixed compare /tmp/baseline14 /tmp/after14

A record holds, per run, ``metrics.json`` and ``curves.npz`` (the emergence curve included).
``compare`` requires every ``metrics.json`` to be equal byte for byte once the timing fields
(``train.wall_s``, ``train.env_steps_per_s``), the record's ``version``, ``code`` and
``finished`` are dropped, and every array of ``curves.npz`` to be equal exactly. Not a test: it
runs ~26 small runs (a few minutes on a loaded CPU), so it is run by hand around a refactor, as
its commit message says.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ARCHS = ("lstm", "gru", "slot", "ffn", "transformer")
TASKS = ("dependent_bandit", "bernoulli_bandit")
SMALL = [
    "training.updates=3",
    "training.batch_size=8",
    "eval.num_tasks=32",
    "eval.curve_tasks=8",
    "eval.ood_tasks=8",
    "eval.location_tasks=16",
    "eval.every=2",  # emergence curve at updates 0 and 2
    "logger=none",
    "progress=false",
    "checkpoint_every=2",
    "task.family.num_trials=12",
]
#: beyond every arch on both bandits: the other signals, memory off, a pool (location index)
EXTRA = [
    ["training=supervised"],
    ["training=none"],
    ["condition=no_memory"],
    ["condition=pool", "condition.pool_size=4"],
    ["condition=trialwise"],
]
TIMING = ("wall_s", "env_steps_per_s")


def runs() -> list[tuple[str, list[str]]]:
    """(name, overrides) of every recorded run."""
    out = []
    for task in TASKS:
        for arch in ARCHS:
            out.append((f"{task}_{arch}", [f"task={task}", f"arch={arch}"]))
        for i, extra in enumerate(EXTRA):
            out.append((f"{task}_lstm_extra{i}", [f"task={task}", "arch=lstm", *extra]))
    return out


def record(root: Path) -> None:
    """Run every small run into ``root/<name>``, keeping metrics.json and curves.npz."""
    from mesalab.studies.run import CONFIG_DIR, run

    root.mkdir(parents=True, exist_ok=True)
    for name, overrides in runs():
        work = root / "work" / name
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides + SMALL + ["seed=3"])
        run(cfg, work)
        keep = root / name
        keep.mkdir(exist_ok=True)
        for f in ("metrics.json", "curves.npz"):
            shutil.copy(work / f, keep / f)
        print("recorded", name, flush=True)
    shutil.rmtree(root / "work")


def _comparable(path: Path) -> str:
    data = json.loads(path.read_text())
    data.pop("version", None)
    data.pop("code", None)  # the commit that ran (the baseline was made at another)
    data.pop("finished", None)  # when it ran
    for k in TIMING:
        data["train"].pop(k)
    return json.dumps(data, indent=1)


def compare(a: Path, b: Path) -> int:
    """Number of runs whose outputs differ (printed); 0 = results did not move."""
    bad = 0
    for name, _ in runs():
        diffs = []
        if _comparable(a / name / "metrics.json") != _comparable(b / name / "metrics.json"):
            diffs.append("metrics.json")
        ca, cb = np.load(a / name / "curves.npz"), np.load(b / name / "curves.npz")
        if sorted(ca.files) != sorted(cb.files):
            diffs.append(f"curves.npz keys {sorted(ca.files)} != {sorted(cb.files)}")
        else:
            diffs += [f"curves.npz[{k}]" for k in ca.files if not np.array_equal(ca[k], cb[k])]
        print(name, "identical" if not diffs else f"DIFFERS: {diffs}")
        bad += bool(diffs)
    print(f"{bad} of {len(runs())} runs differ")
    return bad


if __name__ == "__main__":
    cmd, *paths = sys.argv[1:]
    if cmd == "record":
        record(Path(paths[0]))
    else:
        sys.exit(1 if compare(Path(paths[0]), Path(paths[1])) else 0)
