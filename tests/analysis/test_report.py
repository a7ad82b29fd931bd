"""mesalab-report: aggregates and intervals, verdicts, CSV, a real sweep, the W&B no-login path."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from scipy import stats

from mesalab.analysis.conditions import verdicts
from mesalab.analysis.report import main, provenance, sweep_label, sweep_title
from mesalab.analysis.report_figures import condition_label
from mesalab.analysis.runs_csv import PROJECT_ROOT
from mesalab.analysis.sweep import group_runs, load_sweep, t_interval
from mesalab.analysis.wandb_report import NO_LOGIN, build_report, has_login
from mesalab.studies.conditions import group_option
from mesalab.studies.version import code_state, describe
from tests.studies.conftest import TINY

T = 10
TASK = "dependent_bandit"


def summary(imp: float, regret: float, ci: list[float] | None = None) -> dict:
    """An eval/reference dict of metrics.json with the given improvement and regret."""
    return {
        "num_tasks": 100,
        "num_trials": T,
        "reward_curve": np.linspace(0.5, 0.5 + imp, T).tolist(),
        "improvement": imp,
        "improvement_ci95": ci or [imp - 0.05, imp + 0.05],
        "normalized_improvement": imp / 0.4,
        "regret": regret,
        "regret_ci95": [regret - 0.1, regret + 0.1],
        "total_reward": 5.0,
    }


def write_run(
    root: Path,
    arch: str,
    training: str,
    memory: bool,
    dist: str,
    seed: int,
    imp: float,
    *,
    regret: float = 2.0,
    bayes_regret: float = 1.0,
    ci: list[float] | None = None,
    extra: tuple[str, ...] = (),
    training_config: str | None = None,
) -> Path:
    """A run directory as mesalab-run writes it (metrics.json and .hydra/).

    Its config holds the real ``configs/arch/<arch>`` and ``configs/training/<training>`` (or
    ``training_config``, renamed ``training``: a variant of a signal under another name).
    """
    name = f"{TASK}_{arch}_{training}_mem-{'on' if memory else 'off'}_{dist}_s{seed}"
    name += "".join(f"_{e.replace('=', '-')}" for e in extra)
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    metrics = {
        "task": TASK,
        "arch": arch,
        "training": training,
        "memory": memory,
        "distribution": dist,
        "seed": seed,
        "train": {"env_steps": 100, "wall_s": 1.0, "env_steps_per_s": 100.0},
        "eval": summary(imp, regret, ci),
        "references": {"oracle": summary(0.0, 0.0), "bayes_optimal": summary(0.4, bayes_regret)},
        "frozen": {"digest_before": "a", "digest_after": "a", "verified": True},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    overrides = [
        f"task={TASK}",
        f"arch={arch}",
        f"training={training}",
        f"condition.memory={str(memory).lower()}",
        f"condition.distribution={dist}",
        f"seed={seed}",
        "out_root=/somewhere",
        *extra,
    ]
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {
        "arch": group_option("arch", arch),
        "training": {**group_option("training", training_config or training), "name": training},
        "sweep_name": "synthetic",
        "logger": {"group": None, "project": "mesalab"},
    }
    composed = OmegaConf.create(config)
    for e in extra:  # as Hydra composes it: the override's value at its path
        key, value = e.lstrip("+").split("=", 1)
        OmegaConf.update(composed, key, yaml.safe_load(value), force_add=True)
    OmegaConf.save(composed, d / ".hydra" / "config.yaml")
    return d


#: (arch, training, memory, distribution) -> improvement per seed
SWEEP = {
    ("lstm", "rl", True, "related"): [0.30, 0.25, 0.35],
    ("lstm", "rl", False, "related"): [0.01, -0.02, 0.00],
    ("lstm", "supervised", True, "related"): [0.20, 0.22, 0.18],
    ("lstm", "rl", True, "trialwise"): [0.10, -0.10, 0.05],
    ("ffn", "rl", False, "related"): [-0.01, 0.01, 0.00],
    ("ffn", "supervised", False, "related"): [0.10, 0.12, 0.11],
}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Synthetic sweep: 3 seeds per condition, a 1-seed condition, and 2 unfinished runs."""
    root = tmp_path / "sweep"
    for (arch, training, mem, dist), imps in SWEEP.items():
        for seed, imp in enumerate(imps):
            write_run(
                root,
                arch,
                training,
                mem,
                dist,
                seed,
                imp,
                regret=2.0 + seed,
                bayes_regret=1.0 + 0.5 * seed,
            )
    # one seed only: its bootstrap interval [-0.03, 0.04] includes 0
    write_run(root, "lstm", "none", True, "related", 0, 0.005, ci=[-0.03, 0.04])
    # unfinished runs: no metrics.json, and a truncated one
    (root / "unfinished_s3" / ".hydra").mkdir(parents=True)
    broken = write_run(root, "lstm", "rl", True, "single", 0, 0.3)
    (broken / "metrics.json").write_text('{"task": "dependent_bandit", "arch": "ls')
    return root


def test_t_interval_matches_textbook() -> None:
    # t(0.975, df=2) = 4.303 (printed tables); mean 2, sd 1, n 3
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0)
    assert (hi - lo) / 2 == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)


def test_aggregates_and_intervals(sweep: Path) -> None:
    runs, skipped = load_sweep(sweep)
    assert sorted(p.name for p in skipped) == [f"{TASK}_lstm_rl_mem-on_single_s0", "unfinished_s3"]
    assert len(runs) == sum(map(len, SWEEP.values())) + 1
    groups = {(g.arch, g.training, g.memory, g.distribution): g for g in group_runs(runs)}
    assert set(groups) == set(SWEEP) | {("lstm", "none", True, "related")}
    for key, imps in SWEEP.items():
        s = groups[key].stats["improvement"]
        x = np.asarray(imps)
        lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert (s.n, s.method) == (3, "t")
        assert s.mean == pytest.approx(x.mean())
        assert (s.lo, s.hi) == pytest.approx((lo, hi))
        # regret 2, 3, 4 and Bayes-optimal 1, 1.5, 2 in every condition
        r = groups[key].stats
        assert r["regret"].mean == pytest.approx(3.0)
        assert r["bayes_optimal.regret"].mean == pytest.approx(1.5)
        assert r["regret_ratio"].mean == pytest.approx(2.0)
        assert r["normalized_improvement"].mean == pytest.approx(x.mean() / 0.4)
    one = groups[("lstm", "none", True, "related")].stats["improvement"]
    assert (one.n, one.method, one.mean, one.lo, one.hi) == (1, "bootstrap", 0.005, -0.03, 0.04)


def test_necessary_sufficient_verdicts(sweep: Path) -> None:
    runs, _ = load_sweep(sweep)
    rows = {(v.arch, v.setting.split(",")[0]): v.verdict for v in verdicts(group_runs(runs))}
    assert rows[("lstm", "memory on")].endswith("sufficient")
    assert "not sufficient" not in rows[("lstm", "memory on")]
    assert rows[("lstm", "memory off")] == "removes the improvement: necessary"
    assert rows[("lstm", "training supervised")] == "keeps the improvement: not necessary"
    assert rows[("lstm", "training none")] == "removes the improvement: necessary"
    assert rows[("lstm", "distribution single")] == "not run"
    assert rows[("lstm", "distribution trialwise")] == "removes the improvement: necessary"
    # ffn: no memory, so its full condition is memory off; it does not improve
    assert rows[("ffn", "memory off (arch has none)")] == "no improvement: not sufficient"
    assert rows[("ffn", "memory off")].startswith("n/a")
    assert rows[("ffn", "training supervised")].startswith("undetermined")


def test_cli_writes_report_csv_and_figures(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out / "report.md")
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(map(len, SWEEP.values())) + 1
    md = (out / "report.md").read_text()
    assert "removes the improvement: necessary" in md and "1 seed: bootstrap over tasks" in md
    html = (out / "report.html").read_text()
    assert '<img src="figures/improvement.png"' in html and "<table>" in html
    for png in ("improvement.png", f"curves_{TASK}_lstm.png", f"curves_{TASK}_ffn.png"):
        assert (out / "figures" / png).stat().st_size > 5000


def table_rows(md: str, first_header: str) -> list[dict[str, str]]:
    """Rows of the markdown table whose header row starts with ``first_header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header}"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def parse_stat(cell: str) -> list[float]:
    """``m [lo, hi]`` -> [m, lo, hi]."""
    return [float(x) for x in cell.replace("[", " ").replace("]", " ").replace(",", " ").split()]


def test_real_sweep_report_matches_runs(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
    cmd = [
        sys.executable,
        "-m",
        "mesalab.studies.run",
        "-m",
        *TINY,
        "condition.memory=true,false",
        f"out_root={tmp_path}",
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    sweep_dir = tmp_path / "sweeps" / "default"
    assert main([str(sweep_dir)]) == 0
    md = (sweep_dir / "report" / "report.md").read_text()
    rows = table_rows(md, "task | arch | memory")
    assert len(rows) == 2
    for row in rows:
        name = row["_name"] = f"{TASK}_lstm_rl_mem-{row['memory']}_related_s0"
        ev = json.loads((sweep_dir / name / "metrics.json").read_text())["eval"]
        # one seed per condition: the run's own value and bootstrap interval
        assert parse_stat(row["improvement [95%]"]) == pytest.approx(
            [ev["improvement"], *ev["improvement_ci95"]], rel=1e-3, abs=1e-4
        )
        assert parse_stat(row["regret [95%]"]) == pytest.approx(
            [ev["regret"], *ev["regret_ci95"]], rel=1e-3, abs=1e-4
        )
        assert row["seeds"] == "1" and row["interval"] == "1 seed: bootstrap over tasks"
    # the header: the sweep's name (tmp_path is outside the project), the runs' code version
    code = json.loads((sweep_dir / rows[0]["_name"] / "metrics.json").read_text())["code"]
    assert code == code_state() and describe(code) != "unknown"
    assert "Sweep `.../default`; runs finished 20" in md
    assert f"code: {describe(code)} (2 runs). Report made " in md
    assert str(tmp_path) not in md.split("## ")[0]  # no machine path in the header
    with open(sweep_dir / "report" / "runs.csv") as f:
        csv_rows = {r["run"]: r for r in csv.DictReader(f)}
    assert len(csv_rows) == 2
    for name, r in csv_rows.items():
        m = json.loads((sweep_dir / name / "metrics.json").read_text())
        assert float(r["eval_improvement"]) == m["eval"]["improvement"]
        assert float(r["ref_random_regret"]) == m["references"]["random"]["regret"]
        assert "condition.memory=" in r["overrides"]
        assert r["path"] == f".../{name}"  # outside the project and working directory


def test_wandb_report_without_login_says_so_and_succeeds(sweep: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "WANDB_CONFIG_DIR": str(home),
        "NETRC": str(home / "netrc"),
        "WANDB_API_KEY": "",
        "MPLBACKEND": "Agg",
    }
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mesalab.analysis.report",
            str(sweep),
            "--out",
            str(out),
            "--wandb-report",
            "--project",
            "p",
        ],
        env=env,
        capture_output=True,
        text=True,
        # a guard against a hang waiting for the network, not a speed check: a fresh
        # interpreter importing torch, matplotlib and wandb took over 60 s on a loaded 2-core host
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert NO_LOGIN.format(dir=sweep) in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == str(out / "report.md")
    assert (out / "report.html").exists()


def test_login_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert has_login()


def test_wandb_report_definition_groups_the_comparison() -> None:
    report = build_report("proj", "ent", "three_conditions", [TASK], ["lstm", "ffn"])
    grids = [b for b in report.blocks if type(b).__name__ == "PanelGrid"]
    assert len(grids) == 3  # the task overview, then one per arch
    overview = grids[0].runsets[0]
    assert overview.groupby == [
        "config.arch.name",
        "config.training.name",
        "config.condition.memory",
        "config.condition.distribution",
    ]
    assert "three_conditions" in overview.filters and TASK in overview.filters
    assert "lstm" in grids[1].runsets[0].filters
    bars = [p for p in grids[1].panels if type(p).__name__ == "BarPlot"]
    assert "eval/improvement" in [m.name for p in bars for m in p.metrics]
    lines = [p for p in grids[1].panels if type(p).__name__ == "LinePlot"]
    assert [m.name for m in lines[0].y] == ["emergence/improvement"]
    charts = [p for p in grids[1].panels if type(p).__name__ == "CustomChart"]
    assert charts[0].query["summaryTable"]["tableKey"] == "eval/curve_plot_table"


def test_sweep_named_relative_to_the_project_or_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    assert sweep_label(PROJECT_ROOT / "outputs" / "sweeps" / "x") == "outputs/sweeps/x"
    monkeypatch.chdir(tmp_path)
    assert sweep_label(tmp_path / "outputs" / "sweeps" / "y") == "outputs/sweeps/y"
    monkeypatch.chdir(PROJECT_ROOT)
    assert sweep_label(tmp_path / "elsewhere" / "z") == ".../z"


def test_provenance_gives_the_runs_dates_and_code_versions(sweep: Path) -> None:
    runs, _ = load_sweep(sweep)
    day = 1_796_083_200  # 2026-12-01 00:00 UTC
    for i, r in enumerate(runs):
        os.utime(r.path / "metrics.json", (day + 36000 + 60 * i, day + 36000 + 60 * i))
    runs[0].record.code = {"commit": "0123456789abcdef", "dirty": True}
    runs[1].record.code = {"commit": "0123456789abcdef", "dirty": True}
    text = provenance(runs, sweep)
    last = f"10:{len(runs) - 1:02d}"
    assert text.startswith(
        f"Sweep `.../sweep`; runs finished 2026-12-01 10:00 to "
        f"2026-12-01 {last} UTC (file times for {len(runs)} runs that did not record when they "
        f"finished); code: 0123456 (dirty) (2 runs), not recorded "
        f"({len(runs) - 2} runs). Report made "
    )
    # a recorded finish time wins over the file's (a fresh clone's files carry checkout times)
    for r in runs:
        r.record.finished = "2026-11-30T23:59:59Z"
    runs[-1].record.finished = "2026-12-01T08:00:00Z"
    assert provenance(runs, sweep).startswith(
        "Sweep `.../sweep`; runs finished 2026-11-30 23:59 to 2026-12-01 08:00 UTC; code: "
    )
    runs[-1].record.finished = "yesterday"  # hand-edited: the file's time, counted as such
    assert "UTC (file times for 1 runs that did not record when they finished)" in provenance(
        runs, sweep
    )


def test_the_title_is_the_runs_sweep_name_when_they_share_one(sweep: Path) -> None:
    runs, _ = load_sweep(sweep)
    for r in runs:
        r.config.pop("sweep_name", None)
    assert sweep_title(runs, sweep) == "sweep"  # no sweep_name recorded: the directory's
    for r in runs:
        r.config["sweep_name"] = "task_diversity_x"
    assert sweep_title(runs, sweep / "runs") == "task_diversity_x"  # a study's committed copy
    runs[0].config["sweep_name"] = "another"
    assert sweep_title(runs, sweep) == "sweep"


def test_report_tells_memory_off_from_no_history_at_all(tmp_path: Path) -> None:
    """Memory off keeps a one-step reactive improvement; with the history inputs off too it is
    gone: the verdicts name which was removed, and runs.csv has the history_inputs column."""
    root = tmp_path / "sweep"
    per_seed = [(0.30, 0.020, 0.00), (0.25, 0.030, -0.01), (0.35, 0.025, 0.01)]
    for seed, (full, mem_off, no_hist) in enumerate(per_seed):
        write_run(root, "lstm", "rl", True, "related", seed, full)
        write_run(root, "lstm", "rl", False, "related", seed, mem_off)
        d = write_run(
            root, "lstm", "rl", False, "related", seed, no_hist,
            extra=("condition.history_inputs=false",),
        )  # fmt: skip
        metrics = json.loads((d / "metrics.json").read_text())
        (d / "metrics.json").write_text(json.dumps({**metrics, "history_inputs": False}))
    runs, _ = load_sweep(root)
    groups = group_runs(runs)
    assert len(groups) == 3 and not any(g.variant for g in groups)
    rows = {v.setting: v for v in verdicts(groups)}
    assert rows["memory off"].condition == "memory beyond one trial"
    assert rows["memory off"].verdict == "keeps the improvement: not necessary"
    both = rows["memory and history inputs off"]
    assert both.condition == "any access to history"
    assert both.verdict == "removes the improvement: necessary" and both.stat.n == 3
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    with open(out / "runs.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert sorted(r["history_inputs"] for r in csv_rows) == ["False"] * 3 + ["True"] * 6
    md = (out / "report.md").read_text()
    assert "necessary: any access to history" in md
    assert "not necessary: memory beyond one trial" in md
    # the figures give each of the three conditions its own place (a bar position, a panel):
    # memory off and memory-and-history off must not be drawn over each other
    labels = {condition_label(g) for g in groups}
    assert len(labels) == 3 and any("no-hist" in label for label in labels)


def test_k_of_n_seeds_learned_counts_a_collapse(tmp_path: Path) -> None:
    """Per seed: its own interval above 0, and its regret within 2x the Bayes-optimal's.

    lstm: two seeds learn and one collapses, so the interval over seeds includes 0 and the
    verdict is "not sufficient", and the report says that 2 of 3 seeds did learn. gru: every
    seed learns with memory, none without: the verdicts say how many seeds back them.
    """
    root = tmp_path / "sweep"
    # (improvement, its interval, regret, bayes regret)
    seeds = [
        (0.30, [0.25, 0.35], 1.5, 1.0),  # learned, 1.5x
        (0.20, [0.01, 0.39], 2.5, 1.0),  # interval above 0, but 2.5x the Bayes-optimal
        (0.02, [-0.01, 0.05], 22.0, 1.0),  # collapsed
    ]
    for seed, (imp, ci, regret, bayes) in enumerate(seeds):
        write_run(root, "lstm", "rl", True, "related", seed, imp, ci=ci, regret=regret,
                  bayes_regret=bayes)  # fmt: skip
        write_run(root, "gru", "rl", True, "related", seed, 0.3 + seed / 100, ci=[0.2, 0.4])
        for arch in ("lstm", "gru"):
            write_run(root, arch, "rl", False, "related", seed, 0.0, ci=[-0.02, 0.02])
    runs, _ = load_sweep(root)
    groups = {(g.arch, g.memory): g for g in group_runs(runs)}
    full, off = groups["lstm", True].learned, groups["lstm", False].learned
    assert (full.n, full.improved, full.near_ideal) == (3, 2, 1)
    assert (off.n, off.improved) == (3, 0)
    rows = {(v.arch, v.setting.split(",")[0]): v for v in verdicts(list(groups.values()))}
    assert rows["lstm", "memory on"].verdict == "no improvement: not sufficient"
    assert rows["lstm", "memory on"].backing() == "1 of 3 seeds did not improve"
    assert rows["gru", "memory on"].backing() == "3 of 3 seeds improved"
    assert rows["gru", "memory off"].verdict == "removes the improvement: necessary"
    assert rows["gru", "memory off"].backing() == "3 of 3 seeds did not improve"
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "full condition does not improve (not sufficient) (2 of 3 improved, 1 of 3 " in md
    assert "necessary: memory beyond one trial (3 of 3 seeds did not improve)" in md
    table = table_rows(md, "task | arch | memory")
    learned = {(r["arch"], r["memory"]): r["seeds learned"] for r in table}
    assert learned["lstm", "on"] == "2 of 3 improved, 1 of 3 within 2x bayes_optimal"
    assert learned["gru", "off"].startswith("0 of 3 improved")


def test_a_sweep_without_the_full_condition_says_the_conditions_are_not_tested(
    tmp_path: Path,
) -> None:
    """A supervised-only sweep (as a task-diversity one) gets one sentence, not a table of
    empty verdicts; a sweep with the full condition keeps the table."""
    root = tmp_path / "sup"
    for seed in range(2):
        write_run(root, "lstm", "supervised", True, "related", seed, 0.2)
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md.split("## Necessary and sufficient conditions")[1].split("\n## ")[0]
    assert "Not tested by this sweep: no run has the full condition" in section
    assert "| condition tested" not in section and "not run" not in section
    write_run(root, "lstm", "rl", True, "related", 0, 0.3)
    assert main([str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md.split("## Necessary and sufficient conditions")[1].split("\n## ")[0]
    assert "| condition tested" in section and "Not tested by this sweep" not in section
