"""The study's conditions read from the classes a config builds, never from config names.

Condition 1 (memory): the core class says whether the architecture has memory at all
(``Core.has_memory``). Condition 2 (training): the signal class says whether it updates the
weights and whether reward enters the gradient (``Signal.condition``). Condition 3 is the
distribution mode itself (``condition.distribution``).

These read the ``_target_`` of a config node (an OmegaConf node or the plain dict saved in a
run's ``.hydra/config.yaml``) and import that class, without building anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import OmegaConf

from mesalab.archs.base import Core
from mesalab.studies.signals import Signal
from mesalab.tasks.tree import check

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def _target(node: Any, field: str, base: type) -> type:
    """The class named by ``node[field]._target_``, checked to be a ``base``."""
    sub = node.get(field) if isinstance(node, Mapping) or hasattr(node, "get") else None
    target = sub.get("_target_") if sub is not None else None
    check(isinstance(target, str), f"{field}._target_", target, "a class path")
    cls = get_class(target)
    check(issubclass(cls, base), f"{field}._target_", target, f"a subclass of {base.__name__}")
    return cls


def core_class(arch: Any) -> type[Core]:
    """The core class an ``arch`` config node builds (``arch.core._target_``)."""
    return _target(arch, "core", Core)


def signal_class(training: Any) -> type[Signal]:
    """The signal class a ``training`` config node builds (``training.signal._target_``)."""
    return _target(training, "signal", Signal)


def arch_has_memory(arch: Any) -> bool:
    """Whether the arch of this config node has any memory to switch on."""
    return core_class(arch).has_memory


def signal_condition(training: Any) -> str:
    """Condition 2 of this training config node: ``rl``, ``supervised`` or ``none``."""
    return signal_class(training).condition()


def group_option(group: str, name: str, config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """``configs/<group>/<name>.yaml`` merged over the options of its group it extends.

    Enough of Hydra's defaults list for one group (``defaults: [rl, _self_]``), so that the
    sweeper can ask an option's class before any job is composed.
    """
    path = config_dir / group / f"{name}.yaml"
    check(
        path.exists(), group, name, f"one of {sorted(p.stem for p in path.parent.glob('*.yaml'))}"
    )
    node = OmegaConf.to_container(OmegaConf.load(path))
    assert isinstance(node, dict)
    merged: dict[str, Any] = {}
    for parent in node.pop("defaults", []):
        if isinstance(parent, str) and parent != "_self_":
            merged = _merge(merged, group_option(group, parent, config_dir))
    return _merge(merged, node)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
