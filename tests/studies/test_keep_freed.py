"""``keep_freed_memory``: glibc's malloc told to keep freed memory, once per process, with a
switch to leave glibc's defaults (each case in a fresh process: the setting is process-wide)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from mesalab.studies.device import keep_freed_memory as k; print(k(), k())"


def _run(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("MESALAB_KEEP_FREED", None)
    if env_value is not None:
        env["MESALAB_KEEP_FREED"] = env_value
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_it_applies_once_on_glibc():
    assert _run(None) == "True True"


def test_the_switch_leaves_the_c_librarys_defaults():
    assert _run("0") == "False False"
