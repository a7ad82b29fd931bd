"""Packaging: one import namespace, a light core, and no bare imports of the project's folders."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tasks", "archs", "studies", "analysis")
EXTRAS = ("hydra", "omegaconf", "wandb", "transformers", "matplotlib", "scipy", "gymnasium", "tqdm")


def _python_files() -> list[Path]:
    dirs = [*FOLDERS, "tests", "benchmarks", "hydra_plugins", "mesalab"]
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_no_bare_imports_of_project_folders():
    """`import tasks` would load a second copy of a module beside `mesalab.tasks` (and, installed
    in another project, shadow that project's own `tasks`): every import goes through mesalab."""
    bad = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            bad += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in FOLDERS
            ]
    assert not bad, "import these through mesalab.<folder>:\n" + "\n".join(bad)


def test_importing_tasks_imports_no_study_extra():
    """`pip install mesalab` (torch, numpy, einops) is enough for the task generator."""
    # torch imports tqdm by itself when tqdm is present: count only what mesalab.tasks adds.
    code = (
        "import sys, torch, numpy, einops\n"
        "before = set(sys.modules)\n"
        "import mesalab.tasks as t\n"
        "fam = t.make_family('dependent_bandit', num_trials=5)\n"
        "dist = t.TaskDistribution(fam, mode='related')\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        f"print(sorted(added & set({EXTRAS!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"mesalab.tasks imported study extras: {out.stdout}"


def test_transformers_is_imported_only_by_building_a_core_that_needs_it():
    """Importing transformers takes seconds: a run, a report or a recurrent learner never pays it.
    Building a transformer core imports it, and builds GPT-2 as before."""
    code = (
        "import sys\n"
        "import mesalab.archs, mesalab.studies.run, mesalab.analysis.sweep\n"
        "from mesalab.archs import LSTMCore, TransformerCore\n"
        "LSTMCore(input_dim=5, hidden_size=8)\n"
        "print('transformers' in sys.modules)\n"
        "core = TransformerCore(input_dim=5, d_model=8, num_heads=2)\n"
        "print('transformers' in sys.modules, type(core.gpt).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["False", "True GPT2Model"], out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy: setuptools stages files in <source>/build/, and stale files there would
    # leak into the wheel (and the checkout).
    src = tmp_path_factory.mktemp("src") / "mesalab"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "outputs", "multirun", "*.egg-info")
    shutil.copytree(ROOT, src, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(out), str(src)], check=True, capture_output=True, cwd=out)
    (whl,) = out.glob("mesalab-*.whl")
    return whl


def test_wheel_installs_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"mesalab", "hydra_plugins"}, tops
    # Every module of every folder is in the wheel, under mesalab/ (a forgotten subpackage fails).
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            assert f"mesalab/{path.relative_to(ROOT).as_posix()}" in names, path
    # The configs travel with the code, so an installed mesalab-run finds them.
    assert "mesalab/configs/config.yaml" in names
    assert "mesalab/configs/arch/lstm.yaml" in names


def test_wheel_core_requires_only_torch_numpy_einops(wheel):
    meta = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA")))
        .decode()
    )
    requires = [
        line.split(":", 1)[1].strip()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    core = sorted(
        r.split(">")[0].split("<")[0].split("=")[0].strip() for r in requires if "extra ==" not in r
    )
    assert core == ["einops", "numpy", "torch"], core
    study = " ".join(r for r in requires if 'extra == "study"' in r)
    for dep in ("hydra-core", "wandb", "transformers", "matplotlib", "scipy", "gymnasium"):
        assert dep in study, dep
