"""Widths that give every architecture the same parameter budget.

``width_for_budget`` searches one width for any learner builder; ``matched_widths`` gives the
width keyword of every core at one budget (by default that of the LSTM-48 learner of Wang et
al. 2018 on a 2-armed bandit: input_dim 5, 10,805 parameters), with the other structural
settings fixed in ``MATCHED_STRUCTURE``. Counts include the shared heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from mesalab.archs.base import Core, Learner, check, check_positive
from mesalab.archs.feedforward import FFNCore
from mesalab.archs.mamba import MambaCore
from mesalab.archs.recurrent import GRUCore, LSTMCore
from mesalab.archs.slot_memory import SlotCore
from mesalab.archs.transformer import TransformerCore

# Per core: its class and the keywords it is built with at width ``w``; ``w`` is searched.
MATCHED_STRUCTURE: dict[str, tuple[type[Core], Callable[[int], dict[str, Any]]]] = {
    "lstm": (LSTMCore, lambda w: {"hidden_size": w}),
    "gru": (GRUCore, lambda w: {"hidden_size": w}),
    # The slots are rounded up to the heads, so the controller width moves in steps of one.
    "slot": (
        SlotCore,
        lambda w: {"num_slots": 32, "num_heads": 2, "width": w, "slot_dim": 2 * math.ceil(w / 2)},
    ),
    "ffn": (FFNCore, lambda w: {"num_layers": 2, "hidden_size": w}),
    # d_model moves in steps of the head count; d_inner is then tuned to close the gap.
    "transformer": (
        TransformerCore,
        lambda w: {"num_layers": 2, "num_heads": 2, "max_context": 256, "d_model": 2 * w},
    ),
    "mamba": (
        MambaCore,
        lambda w: {"num_layers": 2, "state_size": 16, "expand": 2, "conv_kernel": 4, "d_model": w},
    ),
}


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
) -> dict[str, dict[str, int]]:
    """Width keywords per core (plus ``MATCHED_STRUCTURE``) at ``budget`` parameters.

    Raises ValueError if the counts are not within ``tolerance`` of each other (largest over
    smallest), which happens when the budget is too small for a core's coarsest width step.
    The transformer's MLP width ``d_inner`` is tuned after ``d_model`` to close the gap.
    """
    budget = default_budget(input_dim, num_actions) if budget is None else budget
    check_positive("budget", budget)
    out: dict[str, dict[str, int]] = {}
    for name, (cls, kwargs_at) in MATCHED_STRUCTURE.items():

        def build(w: int, cls=cls, kwargs_at=kwargs_at) -> Learner:
            return Learner(cls(input_dim, **kwargs_at(w)), num_actions)

        kwargs = kwargs_at(width_for_budget(build, budget))
        if cls is TransformerCore:

            def build_inner(d: int, kwargs=kwargs) -> Learner:
                return Learner(TransformerCore(input_dim, **kwargs, d_inner=d), num_actions)

            kwargs["d_inner"] = width_for_budget(build_inner, budget)
        out[name] = kwargs
    counts = {name: count_learner(name, kw, input_dim, num_actions) for name, kw in out.items()}
    spread = max(counts.values()) / min(counts.values()) - 1
    check(
        spread <= tolerance,
        "budget",
        budget,
        f"large enough to match every core within {tolerance:.0%} (counts {counts})",
    )
    return out


def count_learner(name: str, kwargs: dict[str, int], input_dim: int, num_actions: int) -> int:
    """Parameters of the learner with core ``name`` built with ``kwargs``."""
    cls = MATCHED_STRUCTURE[name][0]
    return Learner(cls(input_dim, **kwargs), num_actions).num_parameters()
