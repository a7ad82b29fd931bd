"""The README's "Using tasks in your own in-context-learning code" example runs verbatim."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def tasks_api_example() -> str:
    """The first python code block of the README's tasks-api section."""
    text = README.read_text()
    section = text.split("<!-- section: tasks-api -->", 1)[1].split("<!-- section:", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the tasks-api section has no python example"
    return blocks[0]


def test_readme_tasks_api_example_runs_verbatim(capsys) -> None:
    code = tasks_api_example()
    assert "gymnasium.make_vec" in code and "rollout(" in code and "build_inputs(" in code
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)  # the example asserts its own results
    assert namespace["regret"]["wsls"] < namespace["regret"]["random"]
    assert "wsls" in capsys.readouterr().out
