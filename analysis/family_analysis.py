"""The one skeleton of a family's analysis of a frozen learner and its references.

Every family analysis does the same four things: compute a result per policy from the
rollouts (same tasks, same noise), say a few header fields, draw one figure, and make one table
row per policy. A subclass of :class:`FamilyAnalysis` supplies those; ``__call__`` assembles
them into the ``analysis.json`` object, always in this order::

    {"analysis": name, <header fields>, "policies": {...}, "figures": [...], "table": [...]}

A family names its analysis on itself (``TaskFamily.analysis``, a class path: the task
generator sits below this layer and never imports it); :func:`analysis_for` builds it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from hydra.utils import get_class

from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.rollout import Trajectory

Results = dict[str, dict[str, Any]]  # policy name -> its result


class FamilyAnalysis(ABC):
    """A family's analysis; subclasses say what, the skeleton says in which order."""

    name: ClassVar[str]  # the ``analysis`` field of analysis.json
    figure: ClassVar[str]  # the figure's file name in the output directory

    @abstractmethod
    def results(
        self, trajs: dict[str, Trajectory], family: TaskFamily, seed: int, **context: Any
    ) -> tuple[dict[str, Any], Results]:
        """(header fields, result per policy) of the rollouts ``trajs``."""

    @abstractmethod
    def plot(self, results: Results, header: dict[str, Any], path: Path) -> Path:
        """Draw the figure to ``path``; return the path written."""

    @abstractmethod
    def row(self, policy: str, result: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
        """The table row of one policy."""

    def __call__(
        self,
        trajs: dict[str, Trajectory],
        family: TaskFamily,
        out_dir: Path | None = None,
        seed: int = 0,
        **context: Any,
    ) -> dict[str, Any]:
        """The analysis.json object (figure written into ``out_dir`` when given)."""
        header, results = self.results(trajs, family, seed, **context)
        out: dict[str, Any] = {"analysis": self.name, **header, "policies": results, "figures": []}
        if out_dir is not None:
            out["figures"].append(self.plot(results, header, Path(out_dir) / self.figure).name)
        out["table"] = [self.row(k, r, header) for k, r in results.items()]
        return out


def analysis_for(family: TaskFamily) -> FamilyAnalysis:
    """The analysis the family names (``family.analysis``)."""
    cls = get_class(family.analysis)
    check(
        isinstance(cls, type) and issubclass(cls, FamilyAnalysis),
        f"{type(family).__name__}.analysis",
        family.analysis,
        "the class path of a FamilyAnalysis",
    )
    return cls()
