"""The mesalab-baselines console script: JSON schema, table, plot and argparse-style errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mesalab.analysis import baselines, demo
from mesalab.tasks import FAMILIES, make_family

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"total_reward", "regret", "regret_ci95", "improvement", "improvement_ci95"}


def test_console_script_is_registered() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'mesalab-baselines = "mesalab.analysis.baselines:main"' in text
    assert "tasks.cli" not in text


def test_json_prints_exactly_one_object_with_the_schema(capsys: pytest.CaptureFixture) -> None:
    assert baselines.main(["--tasks", "300", "--trials", "20", "--seed", "2", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # fails on anything but one JSON document
    assert out.strip().count("\n") == 0
    assert set(data) == {"task", "trials", "tasks", "policies"}
    assert (data["task"], data["trials"], data["tasks"]) == ("dependent_bandit", 20, 300)
    assert list(data["policies"]) == list(make_family("dependent_bandit").references())
    for m in data["policies"].values():
        assert set(m) == FIELDS
        assert m["regret_ci95"][0] <= m["regret"] <= m["regret_ci95"][1]
        assert m["improvement_ci95"][0] <= m["improvement"] <= m["improvement_ci95"][1]
    oracle, rand = data["policies"]["oracle"], data["policies"]["random"]
    assert oracle["regret"] == 0.0
    # totals are per episode, summed over trials: oracle total = random total + random regret
    assert oracle["total_reward"] == pytest.approx(rand["total_reward"] + rand["regret"])
    assert 0.0 < rand["total_reward"] < 20.0


def test_table_plot_and_policy_selection(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "sub" / "curves.png"
    args = ["--tasks", "200", "--trials", "10", "--policies", "random", "--plot", str(png)]
    assert baselines.main(args) == 0
    out = capsys.readouterr().out
    assert "| policy | total reward | regret [95% CI]" in out
    assert "| random |" in out and "| oracle |" not in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--task", "no_such_task"], ["--task", "dependent_bandit"]),
        (["--policies", "oracle,thompsonn"], ["--policies", "thompsonn", "random"]),
        (["--trials", "0"], ["--trials", "integer >= 1"]),
        (["--tasks", "many"], ["--tasks", "integer >= 1"]),
        (["--seed", "-1"], ["--seed", "integer >= 0"]),
        (["--arms", "1"], ["--arms", "integer >= 2"]),
        (["--arms", "3"], ["--arms", "num_arms"]),
        (["--prior", "nowhere"], ["--prior", "near_chance"]),
        (["--plot", "curves.txt"], ["--plot", ".png"]),
    ],
)
def test_bad_options_exit_2_naming_option_and_allowed(
    argv: list[str], names: list[str], capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exc:
        baselines.main([*argv, "--tasks", "10"] if "--tasks" not in argv else argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err


def test_process_exit_code_is_2_on_a_bad_option() -> None:
    cmd = [sys.executable, "-m", "mesalab.analysis.baselines", "--tasks", "50", "--trials", "-3"]
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 2 and "--trials" in bad.stderr and bad.stdout == ""


def test_demo_covers_every_bandit_family(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    names = demo.bandit_families()
    assert "dependent_bandit" in names
    for name, cls in FAMILIES.items():  # two-step shows more than the reward: not a bandit
        family = cls()
        is_bandit = family.kind == "decision" and family.obs_dim + family.feedback_dim == 1
        assert (name in names) == is_bandit
    assert demo.main(["--out", str(tmp_path), "--tasks", "64", "--trials", "5"]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert (tmp_path / f"{name}.png").is_file()
        assert f"{name}: 64 tasks x 5 trials" in out
