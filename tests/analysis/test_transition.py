"""K*: where the location index crosses 0.5 against log2 K, with a bootstrap over seeds."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mesalab.analysis.diversity import diversity_groups
from mesalab.analysis.report import main
from mesalab.analysis.sweep import group_runs, load_sweep
from mesalab.analysis.transition import crossing, threshold, thresholds
from tests.analysis.test_report import write_run
from tests.analysis.test_report_diversity import add_location

KS = [2.0**i for i in range(0, 16)]


def logistic_sweep(center: float, seeds: int, noise: float, seed: int = 0) -> dict:
    """{K: per-seed index}: a logistic in log2 K through 0.5 at ``center``, plus seed noise."""
    rng = np.random.default_rng(seed)
    return {
        k: list(1 / (1 + np.exp(-(math.log2(k) - center))) + noise * rng.standard_normal(seeds))
        for k in KS
    }


def test_crossing_interpolates_in_log2_k() -> None:
    assert crossing([1, 2, 4, 8], [0.1, 0.3, 0.7, 0.9]) == pytest.approx(1.5)
    assert crossing([1, 2, 4], [0.6, 0.7, 0.8]) == -math.inf
    assert crossing([1, 2, 4], [0.1, 0.2, 0.49]) == math.inf


def test_known_threshold_is_recovered() -> None:
    t = threshold(logistic_sweep(13.5, seeds=3, noise=0.05))
    assert t.crossed and t.log2_k == pytest.approx(13.5, abs=0.3)
    assert t.lo <= t.log2_k <= t.hi and t.lo > 12 and t.hi < 15
    assert t.crossed_share > 0.95 and t.seeds == 3
    assert t.text().startswith("K* = 2^13.")


def test_more_seed_noise_widens_the_interval() -> None:
    narrow = threshold(logistic_sweep(8.0, seeds=5, noise=0.02))
    wide = threshold(logistic_sweep(8.0, seeds=5, noise=0.2))
    assert wide.hi - wide.lo > narrow.hi - narrow.lo


def test_never_crossing_says_so() -> None:
    per_k = {k: [0.1 + 0.02 * math.log2(k) + d for d in (-0.01, 0.0, 0.01)] for k in KS}
    t = threshold(per_k)  # tops out at 0.41
    assert not t.crossed and t.log2_k == math.inf and t.crossed_share == 0.0
    assert t.text() == "not crossed (index < 0.5 up to K = 2^15)"


def test_crossing_in_some_resamples_only_leaves_the_upper_end_open() -> None:
    # the mean reaches 0.5 only at the largest K, and one of three seeds stays below it
    per_k = {k: [0.2, 0.2, 0.2] for k in KS[:-1]} | {KS[-1]: [0.3, 0.6, 0.7]}
    t = threshold(per_k)
    assert t.crossed and 0 < t.crossed_share < 1 and t.hi == math.inf
    assert "> 2^15]" in t.text()


def test_one_seed_claims_no_interval() -> None:
    t = threshold({1.0: [0.1], 2.0: [0.3], 4.0: [0.7]})
    assert t.log2_k == pytest.approx(1.5) and t.lo == t.hi == t.log2_k
    assert t.text() == "K* = 2^1.50 (one seed: no interval)"


def test_uneven_seeds_give_an_interval_from_the_pool_sizes_with_several() -> None:
    # three seeds where the curve crosses, one elsewhere (a sweep's extra seeds on a sub-grid)
    per_k = {1.0: [0.0], 4.0: [0.3, 0.4, 0.6], 16.0: [0.45, 0.55, 0.7], 64.0: [0.8]}
    t = threshold(per_k)
    assert (t.seeds, t.max_seeds, t.seeds_text()) == (1, 3, "1-3")
    assert t.lo < t.log2_k < t.hi  # the spread at K = 4 and 16 moves the crossing
    assert "one seed" not in t.text() and t.text().startswith("K* = 2^")
    even = threshold({1.0: [0.1, 0.2], 4.0: [0.6, 0.7]})
    assert even.seeds_text() == "2"


def test_too_few_pool_sizes_give_none() -> None:
    assert threshold({4.0: [0.5, 0.6]}) is None
    assert threshold({4.0: [0.5], math.inf: [0.9]}) is None


@pytest.fixture
def crossing_sweep(tmp_path: Path) -> Path:
    """lstm crosses 0.5 at K = 2^3 (index log2 K / 6), the gru never does; three seeds."""
    root = tmp_path / "sweep"
    for seed in (0, 1, 2):
        for arch, scale in (("lstm", 6.0), ("gru", 30.0)):
            for k in (1, 4, 16, 64):
                d = write_run(root, arch, "rl", True, f"pool{k}", seed, 0.1, regret=3.0)
                add_location(d, index=math.log2(k) / scale + 0.01 * (seed - 1), k=k)
            d = write_run(root, arch, "rl", True, "related", seed, 0.3)
            add_location(d, None, 1)
        probe = {"source": "features", "r2": 0.7 + 0.1 * seed, "control_r2": 0.2}
        (root / f"dependent_bandit_lstm_rl_mem-on_pool16_s{seed}" / "probes.json").write_text(
            json.dumps(probe)
        )
    return root


def test_thresholds_of_a_sweep(crossing_sweep: Path) -> None:
    runs, _ = load_sweep(crossing_sweep)
    ts = {key[-1]: t for key, t in thresholds(diversity_groups(group_runs(runs))).items()}
    assert ts["lstm"].log2_k == pytest.approx(3.0, abs=0.05)
    assert not ts["gru"].crossed


def test_report_tables_the_transition(crossing_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(crossing_sweep), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "The transition: K* where the index crosses 0.5" in md
    assert "K* = 2^3.0" in md and "not crossed (index < 0.5 up to K = 2^6)" in md
    assert "0.8 / 0.2" in md  # probe R^2 of the lstm at K = 16, trained / untrained
    rows = list(csv.DictReader(open(out / "runs.csv")))
    by = {(r["arch"], r["distribution"], r["seed"]): r for r in rows}
    assert by[("lstm", "pool16", "0")]["pool_size"] == "16"
    assert by[("lstm", "related", "0")]["pool_size"] == ""
    assert float(by[("lstm", "pool16", "2")]["probe_r2"]) == pytest.approx(0.9)
    assert by[("gru", "pool16", "2")]["probe_r2"] == ""
