"""Widths that give every architecture the same parameter budget.

``width_for_budget`` searches one width for any learner builder; ``matched_widths`` gives the
width keyword of every core at one budget (by default that of the LSTM-48 learner of Wang et
al. 2018 on a 2-armed bandit: input_dim 5, 10,805 parameters), with the other structural
settings fixed by each core (``Core.matched_kwargs``). The cores are those of the arch
configs (``configs/arch/*.yaml``): adding an arch config adds it here. Counts include the
shared heads. ``matched_core_kwargs`` gives one core's keywords for one family's input and
action size; a run builds its core with them (explicit keys in its arch config win).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from mesalab.archs.base import Core, Learner, check, check_positive
from mesalab.archs.recurrent import LSTMCore

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def config_cores(config_dir: Path = CONFIG_DIR) -> dict[str, type[Core]]:
    """The core class of every ``configs/arch/*.yaml`` by config name: the configs are the registry.

    In table order (the config's ``report_order``, then the name).
    """
    found = []
    for path in sorted((config_dir / "arch").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        module, _, name = node["core"]["_target_"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        check(isinstance(cls, type) and issubclass(cls, Core), str(path), name, "a Core class")
        found.append((node.get("report_order", 100), path.stem, cls))
    return {stem: cls for _, stem, cls in sorted(found, key=lambda f: f[:2])}


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters of a module (``Learner.num_parameters`` for any module)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def width_for_budget(
    build: Callable[[int], nn.Module], target: int, multiple_of: int = 1, max_width: int = 4096
) -> int:
    """The width (a multiple of ``multiple_of``) whose module's size is closest to ``target``.

    ``build(width)`` must give a module whose parameter count grows with the width.
    """
    check_positive("target", target)
    check_positive("multiple_of", multiple_of)

    def size(n: int) -> int:
        return count_parameters(build(n * multiple_of))

    # Double, then bisect, so that no oversized module is ever built.
    hi = 1
    while size(hi) < target and hi * multiple_of < max_width:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # smallest n whose count reaches the target
        mid = (lo + hi) // 2
        if size(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    candidates = [n * multiple_of for n in (lo - 1, lo) if n >= 1]
    return min(candidates, key=lambda w: abs(count_parameters(build(w)) - target))


def default_budget(input_dim: int = 5, num_actions: int = 2) -> int:
    """Parameters of the LSTM-48 learner (Wang et al. 2018) for this input and action size."""
    return count_parameters(Learner(LSTMCore(input_dim, hidden_size=48), num_actions))


def matched_widths(
    budget: int | None = None,
    input_dim: int = 5,
    num_actions: int = 2,
    tolerance: float = 0.1,
    cores: Mapping[str, type[Core]] | None = None,
) -> dict[str, dict[str, int]]:
    """Width keywords per core (``Core.matched_kwargs``) at ``budget`` parameters.

    ``cores`` defaults to every arch config's core (:func:`config_cores`). Raises ValueError if
    the counts are not within ``tolerance`` of each other (largest over smallest), which happens
    when the budget is too small for a core's coarsest width step. A core's ``fine_width``
    keyword (the transformer's MLP width ``d_inner``) is tuned after the width to close the gap.
    """
    budget = default_budget(input_dim, num_actions) if budget is None else budget
    check_positive("budget", budget)
    cores = config_cores() if cores is None else cores
    out: dict[str, dict[str, int]] = {}
    for name, cls in cores.items():

        def build(w: int, cls: type[Core] = cls) -> Learner:
            return Learner(cls(input_dim, **cls.matched_kwargs(w)), num_actions)

        kwargs = cls.matched_kwargs(width_for_budget(build, budget))
        if cls.fine_width is not None:

            def build_fine(d: int, cls: type[Core] = cls, kwargs: dict = kwargs) -> Learner:
                return Learner(cls(input_dim, **kwargs, **{cls.fine_width: d}), num_actions)

            kwargs[cls.fine_width] = width_for_budget(build_fine, budget)
        out[name] = kwargs
    counts = {
        name: count_learner(cores[name], kw, input_dim, num_actions) for name, kw in out.items()
    }
    spread = max(counts.values()) / min(counts.values()) - 1
    check(
        spread <= tolerance,
        "budget",
        budget,
        f"large enough to match every core within {tolerance:.0%} (counts {counts})",
    )
    return out


def count_learner(cls: type[Core], kwargs: dict[str, int], input_dim: int, num_actions: int) -> int:
    """Parameters of the learner with core class ``cls`` built with ``kwargs``."""
    return Learner(cls(input_dim, **kwargs), num_actions).num_parameters()


def matched_core_kwargs(
    cls: type[Core], input_dim: int, num_actions: int, budget: int | None = None
) -> dict[str, Any]:
    """``cls``'s matched keywords at this input and action size ({} if it cannot scale).

    The budget defaults to the LSTM-48 learner's at the same sizes. Cached per process; the
    search builds modules, so torch's global generator is left as it was (initial weights of
    the run's own modules do not move).
    """
    return dict(_matched_core_kwargs(cls, input_dim, num_actions, budget))


@functools.cache
def _matched_core_kwargs(
    cls: type[Core], input_dim: int, num_actions: int, budget: int | None
) -> tuple[tuple[str, Any], ...]:
    try:
        cls.matched_kwargs(1)
    except NotImplementedError:  # a core that does not say how to scale keeps its config
        return ()
    with torch.random.fork_rng(devices=[]):
        kw = matched_widths(budget, input_dim, num_actions, cores={cls.__name__: cls})
    return tuple(kw[cls.__name__].items())
