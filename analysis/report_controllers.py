"""The report's sections read from ``mesalab-analyze``'s files beside each run.

"The family's analysis" (``analysis.json``: the learner's row of the family's own table, such as
regression's last-position loss against ridge), "inference or a simple controller?"
(``controllers.json``) and "past the training horizon" (``horizons.json``): the report never
rolls a learner out itself, so it stays a few seconds per sweep. A condition whose runs were not
analysed gets no row; a sweep with no analysed run gets no section.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mesalab.analysis.sweep import Group, load_json_object

Block = tuple


def _mean(values: list[float]) -> str:
    """Mean of the values to 3 decimals ('–' when none)."""
    return f"{sum(values) / len(values):.3f}" if values else "–"


def _condition_cells(g: Group) -> list[str]:
    """The columns that name a group's condition, first in both tables."""
    return [g.task, g.arch, "on" if g.memory else "off", g.training, g.distribution]


def learner_row(analysis: dict[str, Any]) -> dict[str, float]:
    """The numbers of the learner's row in an analysis.json's table ({} when there is none)."""
    rows = [r for r in analysis.get("table", []) if r.get("policy") == "learner"]
    if not rows:
        return {}
    return {
        k: float(v)
        for k, v in rows[0].items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _spread(values: list[float]) -> str:
    """Mean with the range over seeds: '1.17 [1.12, 1.25]' (one seed: its value)."""
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{sum(values) / len(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def analysis_blocks(groups: list[Group]) -> list[Block]:
    """One table per family analysis: the learner's numbers per condition, over its seeds."""
    tables: dict[tuple[str, tuple[str, ...]], list[list[str]]] = {}
    for g in groups:
        found = [load_json_object(r.path / "analysis.json") for r in g.runs]
        rows = [(a["analysis"], learner_row(a)) for a in found if a.get("analysis")]
        rows = [(name, row) for name, row in rows if row]
        if not rows:
            continue
        keys = tuple(rows[0][1])
        cells = [_spread([row[k] for _, row in rows if k in row]) for k in keys]
        body = tables.setdefault((rows[0][0], keys), [])
        body.append([*_condition_cells(g), f"{len(rows)}/{len(g.runs)}", *cells])
    blocks: list[Block] = []
    header = ["task", "arch", "memory", "training", "distribution", "analysed"]
    for (name, keys), body in tables.items():
        blocks += [
            ("h", 2, f"The family's analysis: {name}"),
            (
                "p",
                "The frozen learner's row of the family's own analysis (`mesalab-analyze "
                "<run>`, on held-out tasks), per condition: the mean over the analysed seeds "
                "with their range in brackets. The same numbers are `analysis_*` columns of "
                "`runs.csv`.",
            ),
            ("table", [*header, *keys], body),
        ]
    return blocks


def controller_row(g: Group) -> list[str] | None:
    """Best-explaining model over the group's analysed seeds; None when none was analysed."""
    found = [load_json_object(r.path / "controllers.json") for r in g.runs]
    results = [c for c in found if c]
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
    found = [load_json_object(r.path / "horizons.json") for r in g.runs]
    fitting = [[x for x in h["horizons"] if x["fits"]] for h in found if h]
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
