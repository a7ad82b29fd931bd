"""The report's "inference or a simple controller?" and "past the training horizon" sections.

Read from what ``mesalab-analyze --controllers --horizons ...`` left in each run directory
(``controllers.json``, ``horizons.json``): the report never rolls a learner out itself, so it
stays a few seconds per sweep. A condition whose runs were not analysed gets no row; a sweep
with no analysed run gets no section.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mesalab.analysis.sweep import Group

Block = tuple


def read_json(path: Path) -> dict[str, Any] | None:
    """An analysis file, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _mean(values: list[float]) -> str:
    """Mean of the values to 3 decimals ('–' when none)."""
    return f"{sum(values) / len(values):.3f}" if values else "–"


def _condition_cells(g: Group) -> list[str]:
    """The columns that name a group's condition, first in both tables."""
    return [g.task, g.arch, "on" if g.memory else "off", g.training, g.distribution]


def controller_row(g: Group) -> list[str] | None:
    """Best-explaining model over the group's analysed seeds; None when none was analysed."""
    found = [read_json(r.path / "controllers.json") for r in g.runs]
    results = [c for c in found if c is not None]
    if not results:
        return None
    votes = Counter(c["best"] for c in results)
    best, count = votes.most_common(1)[0]
    top = [c["ranking"][0] for c in results]
    gains = [c["models"][k]["gain_over_chance"] for c, k in zip(results, top, strict=True)]
    others = ", ".join(f"{k} {v}" for k, v in votes.items() if k != best)
    return [
        *_condition_cells(g),
        f"{len(results)}/{len(g.runs)}",
        f"{best} ({count}/{len(results)})" + (f"; {others}" if others else ""),
        _mean(gains),
        _mean([c["margin"] for c in results]),
        _mean([c["models"]["bayes_optimal"]["gain_over_chance"] for c in results]),
    ]


def horizon_row(g: Group) -> list[str] | None:
    """Learner reward per training-length segment at the longest horizon that fits."""
    found = [read_json(r.path / "horizons.json") for r in g.runs]
    fitting = [[x for x in h["horizons"] if x["fits"]] for h in found if h is not None]
    fitting = [f for f in fitting if f]  # every horizon overran the context: says nothing
    if not fitting:
        return None
    longest = [max(f, key=lambda x: x["horizon"]) for f in fitting]
    hs = sorted({x["horizon"] for x in longest})
    same = [x for x in longest if x["horizon"] == hs[-1]]  # seeds analysed at that horizon
    segs = [[x["learner_segments"][i] for x in same] for i in range(hs[-1])]
    bayes = [[x["bayes_segments"][i] for x in same] for i in range(hs[-1])]
    return [
        *_condition_cells(g),
        f"{len(same)}/{len(g.runs)}",
        f"{hs[-1]}x",
        " → ".join(_mean(s) for s in segs),
        " → ".join(_mean(s) for s in bayes),
        _mean([x["last_segment_regret_per_trial"] for x in same]),
    ]


def controller_blocks(groups: list[Group]) -> list[Block]:
    """Both sections (each only when some run of the sweep was analysed)."""
    blocks: list[Block] = []
    rows = [r for r in map(controller_row, groups) if r is not None]
    if rows:
        header = ["task", "arch", "memory", "training", "distribution", "analysed"]
        header += ["best model (seeds)", "its gain over chance", "margin", "bayes gain"]
        blocks += [
            ("h", 2, "Inference or a simple controller?"),
            (
                "p",
                "Which model explains the frozen network's own choices best (teacher-forced on "
                "its own history; fitted on half the held-out tasks, scored on the other half; "
                "`mesalab-analyze <run> --controllers`). Gains and margins are held-out "
                "log-likelihood per choice in nats, means over the analysed seeds; `none` "
                "means no model beats a coin by the practical margin.",
            ),
            ("table", header, rows),
        ]
    rows = [r for r in map(horizon_row, groups) if r is not None]
    if rows:
        header = ["task", "arch", "memory", "training", "distribution", "analysed", "horizon"]
        header += ["learner reward by segment", "Bayes reward by segment"]
        header += ["last-segment regret/trial"]
        blocks += [
            ("h", 2, "Past the training horizon"),
            (
                "p",
                "Mean expected reward per segment of the training length on episodes several "
                "times as long (`mesalab-analyze <run> --horizons 1,2,4`); the Bayes-optimal "
                "policy is solved for the longer episode. A learner keeps improving or holds; "
                "a fixed schedule falls back.",
            ),
            ("table", header, rows),
        ]
    return blocks
