"""Which of the three conditions are necessary, and whether together they suffice, per arch.

The full condition is memory on, weights trained by RL, a distribution of related tasks.
It *shows improvement* when the 95% interval of post-freeze improvement lies above 0; then
the three conditions are *sufficient* (for that arch and task). A single ablation *removes*
the improvement when its interval includes 0 or lies below it; then the condition it removes
is *necessary*, else *not necessary*. Combinations that were not run are said to be so.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesalab.analysis.sweep import Group, Learned, Stat

#: (condition it tests, how the setting differs from the full condition, fields changed); the
#: training field is the signal's condition (``Signal.condition``), whatever its config's name
ABLATIONS: tuple[tuple[str, str, dict], ...] = (
    # memory off still sees the last trial's action and feedback: a one-step reactive rule can
    # improve, so it tests "memory beyond one trial"; with the history inputs off too it tests
    # "any access to history"
    ("memory beyond one trial", "memory off", {"memory": False}),
    (
        "any access to history",
        "memory and history inputs off",
        {"memory": False, "history_inputs": False},
    ),
    ("RL training (vs supervised)", "training supervised", {"signal": "supervised"}),
    ("trained weights (vs untrained)", "training none", {"signal": "none"}),
    ("related tasks (vs one task)", "distribution single", {"distribution": "single"}),
    ("related tasks (vs trialwise)", "distribution trialwise", {"distribution": "trialwise"}),
)
FULL = {"signal": "rl", "distribution": "related", "history_inputs": True}
#: the verdict row of the full condition (its ``condition``)
FULL_CONDITION = "all three (full)"


@dataclass
class Verdict:
    """One row of the necessary/sufficient table."""

    task: str
    arch: str
    variant: str
    condition: str
    setting: str
    stat: Stat | None
    verdict: str
    learned: Learned | None = None  # how many of the setting's seeds learned
    ideal: str | None = None  # the ideal observer ``learned.near_ideal`` compares with

    def backing(self) -> str:
        """How many seeds back the verdict: those that improved, or those that did not."""
        k = self.learned
        if k is None or self.stat is None:
            return "–"
        if self.verdict.endswith(": necessary") or self.verdict.endswith("not sufficient"):
            return f"{k.n - k.improved} of {k.n} seeds did not improve"
        return f"{k.improved} of {k.n} seeds improved"


def _has_memory(groups: list[Group]) -> bool:
    """Whether the arch has memory, as its core class says, else whether any run had memory."""
    for g in groups:
        for r in g.runs:
            if r.has_memory is not None:
                return r.has_memory
    return any(g.memory for g in groups)


def _rl_name(full: Group | None) -> str:
    """``rl``, and the RL signal's config when it is another than A2C's (``rl (ppo)``)."""
    if full is None or full.training == "rl":
        return "rl"
    return f"rl ({full.training})"


def verdicts(groups: list[Group]) -> list[Verdict]:
    """The full condition and each single ablation, per (task, arch, variant)."""
    by_arch: dict[tuple, list[Group]] = {}
    for g in groups:
        by_arch.setdefault((g.task, g.arch, g.variant), []).append(g)
    out: list[Verdict] = []
    for (task, arch, variant), gs in by_arch.items():
        has_mem = _has_memory(gs)
        index: dict[tuple, Group] = {}
        for g in gs:  # the first group of a condition stands for it (e.g. two RL configs)
            index.setdefault((g.signal_condition, g.memory, g.distribution, g.history_inputs), g)
        full_key = {"memory": has_mem, **FULL}

        def find(fields: dict, full_key: dict = full_key, index: dict = index) -> Group | None:
            k = {**full_key, **fields}
            return index.get((k["signal"], k["memory"], k["distribution"], k["history_inputs"]))

        full = find({})
        full_stat = full.stats["improvement"] if full else None
        improves = full_stat.above_zero() if full_stat else None
        mem = "memory on" if has_mem else "memory off (arch has none)"
        if full is None:
            text = "not run"
        elif improves:
            text = "shows improvement: the conditions are sufficient"
        elif improves is None:
            text = "no interval: undetermined"
        else:
            text = "no improvement: not sufficient"
        out.append(
            Verdict(
                task,
                arch,
                variant,
                FULL_CONDITION,
                f"{mem}, training {_rl_name(full)}, distribution related",
                full_stat,
                text,
                full.learned if full else None,
                full.ideal if full else None,
            )
        )
        for condition, setting, fields in ABLATIONS:
            if "memory" in fields and not has_mem and len(fields) > 1:
                # no memory to switch off: the history ablation is then a one-factor one
                fields = {k: v for k, v in fields.items() if k != "memory"}
            elif "memory" in fields and not has_mem:
                out.append(
                    Verdict(
                        task,
                        arch,
                        variant,
                        condition,
                        setting,
                        None,
                        "n/a: the arch has no memory to switch off",
                    )
                )
                continue
            g = find(fields)
            stat = g.stats["improvement"] if g else None
            if g is None:
                text = "not run"
            elif stat.above_zero() is None:
                text = "no interval: undetermined"
            elif full is None:
                text = "undetermined: the full condition was not run"
            elif not improves:
                text = "undetermined: the full condition shows no improvement"
            elif stat.above_zero():
                text = "keeps the improvement: not necessary"
            else:
                text = "removes the improvement: necessary"
            learned, ideal = (g.learned, g.ideal) if g else (None, None)
            out.append(Verdict(task, arch, variant, condition, setting, stat, text, learned, ideal))
    return out


_FULL_SHORT = {
    "shows improvement: the conditions are sufficient": "improves (sufficient)",
    "no improvement: not sufficient": "does not improve (not sufficient)",
}


def summary_lines(rows: list[Verdict]) -> list[str]:
    """One sentence per (task, arch, variant): sufficient?, necessary and not necessary."""
    lines = []
    keys = list(dict.fromkeys((v.task, v.arch, v.variant) for v in rows))
    for key in keys:
        vs = [v for v in rows if (v.task, v.arch, v.variant) == key]
        full, abl = vs[0], vs[1:]
        name = f"{key[1]} on {key[0]}" + (f" ({key[2]})" if key[2] else "")
        nec = [_backed(v) for v in abl if v.verdict.endswith(": necessary")]
        notnec = [_backed(v) for v in abl if v.verdict.endswith("not necessary")]
        missing = [v.setting for v in abl if v.verdict == "not run"]
        seeds = f" ({full.learned.text(full.ideal)})" if full.learned else ""
        parts = [f"{name}: full condition {_FULL_SHORT.get(full.verdict, full.verdict)}{seeds}"]
        if nec:
            parts.append("necessary: " + ", ".join(nec))
        if notnec:
            parts.append("not necessary: " + ", ".join(notnec))
        if missing:
            parts.append("not run: " + ", ".join(missing))
        lines.append("; ".join(parts) + ".")
    return lines


def _backed(v: Verdict) -> str:
    """The condition tested and how many seeds back its verdict."""
    return f"{v.condition} ({v.backing()})" if v.learned else v.condition
