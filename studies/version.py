"""The code version a run or a report was made with: git commit and whether the tree was dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: the checkout this module lives in (a wheel install is no checkout: "unknown")
HERE = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    """Output of a git command run in this module's folder, or None when git cannot say."""
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=HERE, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_state() -> dict[str, str | bool | None]:
    """``{"commit": sha or "unknown", "dirty": bool or None}`` of the project's checkout.

    Dirty means tracked files differ from the commit (untracked outputs do not count).
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {"commit": "unknown", "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def describe(state: dict | None) -> str:
    """``b22583c`` / ``b22583c (dirty)`` / ``unknown``: a short form for reports."""
    if not state or state.get("commit") in (None, "unknown"):
        return "unknown"
    short = str(state["commit"])[:7]
    return short + (" (dirty)" if state.get("dirty") else "")
