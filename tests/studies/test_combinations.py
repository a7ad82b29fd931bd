"""Every combination of family x arch x training x memory x distribution runs.

The default suite covers every family once (rotating arch, training and distribution) and
every arch x memory x distribution on one family; the full cross product is ``slow``.
"""

from __future__ import annotations

import itertools
import json

import pytest

from mesalab.studies.run import run
from mesalab.tasks import FAMILIES

ARCHS = ["lstm", "gru", "slot", "ffn", "transformer", "mamba"]
TRAININGS = ["rl", "supervised", "none"]
DISTS = ["related", "single", "pool", "trialwise"]
MICRO = [
    "training.updates=2",
    "training.batch_size=4",
    "eval.num_tasks=8",
    "eval.curve_tasks=4",
    "eval.every=1",
    "logger=none",
    "progress=false",
    "checkpoint_every=0",
    "task.family.num_trials=6",
]


def _run(make_cfg, tmp_path, family: str, arch: str, training: str, memory: bool, dist: str):
    overrides = [
        *MICRO,
        f"task={family}",
        f"arch={arch}",
        f"training={training}",
        f"condition.distribution={dist}",
        f"condition.memory={str(memory).lower()}",
    ]
    if dist == "pool":
        overrides.append("condition.pool_size=2")
    metrics = run(make_cfg(*overrides), tmp_path)
    assert metrics["memory"] is memory and metrics["arch"] == arch
    assert metrics["frozen"]["verified"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    curve = on_disk["eval"].get("reward_curve", on_disk["eval"].get("loss_curve"))
    assert len(curve) == 6 and all(x == x for x in curve)  # no NaN


def _memory_options(arch: str) -> list[bool]:
    return [False] if arch == "ffn" else [True, False]


@pytest.mark.parametrize("i, family", list(enumerate(sorted(FAMILIES))))
def test_every_family_runs(make_cfg, tmp_path, i: int, family: str) -> None:
    arch = ARCHS[i % len(ARCHS)]
    _run(make_cfg, tmp_path, family, arch, TRAININGS[i % 3], arch != "ffn", DISTS[i % 4])


@pytest.mark.parametrize(
    ("arch", "memory", "dist"),
    [(a, m, d) for a in ARCHS for m in _memory_options(a) for d in DISTS],
)
def test_every_arch_memory_distribution_runs(make_cfg, tmp_path, arch, memory, dist) -> None:
    _run(make_cfg, tmp_path, "dependent_bandit", arch, "rl", memory, dist)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "arch", "training", "memory", "dist"),
    [
        (f, a, t, m, d)
        for f, a, t in itertools.product(sorted(FAMILIES), ARCHS, TRAININGS)
        for m in _memory_options(a)
        for d in DISTS
    ],
)
def test_full_cross_product_runs(make_cfg, tmp_path, family, arch, training, memory, dist):
    _run(make_cfg, tmp_path, family, arch, training, memory, dist)
