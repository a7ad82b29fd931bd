"""Signals used by tests to provoke failures on purpose."""

from __future__ import annotations

import torch

from mesalab.studies.signals import A2C


class NaNAfter(A2C):
    """A2C whose loss turns NaN from the ``after``-th call on."""

    def __init__(self, after: int = 2, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.after, self.calls = after, 0

    def population_loss(self, out, traj, head, progress):  # type: ignore[override]
        """The A2C losses, poisoned once ``after`` updates have been made (``loss`` too)."""
        loss, metrics = super().population_loss(out, traj, head, progress)
        self.calls += 1
        return (loss * torch.nan if self.calls > self.after else loss), metrics
