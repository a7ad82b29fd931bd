"""``mesalab-report <sweep dir>``: tables, figures, markdown/HTML report and CSV of a sweep.

    mesalab-report outputs/sweeps/three_conditions              # -> .../report/report.md
    mesalab-report outputs/sweeps/three_conditions --out /tmp/r
    mesalab-report outputs/sweeps/three_conditions --wandb-report --project mesalab

Writes into ``--out`` (default ``<sweep dir>/report``): ``report.md``, ``report.html`` (the
same content; images referenced relatively), ``figures/*.png`` and ``runs.csv`` (one row per
run). Runs without a complete ``metrics.json`` are skipped, each named with its reason
(missing, unreadable or incomplete) on stderr and in the report.
``--wandb-report`` also saves the W&B report of the same comparison (see
``mesalab.analysis.wandb_report``); without a W&B login it says so and the local report stands
alone.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from mesalab.analysis.conditions import FULL_CONDITION, summary_lines, verdicts
from mesalab.analysis.diversity import diversity_blocks, ood_blocks
from mesalab.analysis.report_controllers import analysis_blocks, controller_blocks
from mesalab.analysis.report_figures import curves_figure, improvement_figure, slug
from mesalab.analysis.runs_csv import portable_path, write_csv
from mesalab.analysis.sweep import (
    SKIP_REF_REGRET,
    Group,
    Run,
    Stat,
    assign_variants,
    group_runs,
    ideal_reference,
    load_sweep,
    reference_names,
    skip_reason,
)
from mesalab.studies.record import parse_stamp
from mesalab.studies.version import code_state, describe

#: a report is a list of blocks, rendered once to markdown and once to HTML
Block = tuple


def fmt(x: float | None) -> str:
    """A number for the tables (4 significant digits; a dash when missing)."""
    return "–" if x is None else f"{x:.4g}"


def fmt_stat(s: Stat | None) -> str:
    """``mean [lo, hi]`` (the interval left out when there is none)."""
    if s is None or s.mean is None:
        return "–"
    if s.lo is None:
        return fmt(s.mean)
    return f"{fmt(s.mean)} [{fmt(s.lo)}, {fmt(s.hi)}]"


def interval_note(g: Group) -> str:
    """How the group's improvement interval was obtained."""
    s = g.stats["improvement"]
    if s.method == "t":
        return f"t over {s.n} seeds"
    if s.method == "bootstrap":
        return "1 seed: bootstrap over tasks"
    return "none"


def results_table(groups: list[Group], runs: list[Run]) -> Block:
    """One row per condition: improvement, normalized improvement, regret, references' regret."""
    variants = any(g.variant for g in groups)
    ideal = ideal_reference(runs)
    refs = [n for n in reference_names(runs) if n not in SKIP_REF_REGRET]
    header = ["task", "arch", "memory", "training", "distribution"]
    header += ["variant"] if variants else []
    header += ["seeds", "improvement [95%]", "normalized improvement", "regret [95%]"]
    header += [f"regret / {ideal}"] if ideal else []
    header += [f"{n} regret" for n in refs] + ["interval", "seeds learned"]
    rows = []
    for g in groups:
        mem = ("on" if g.memory else "off") + ("" if g.history_inputs else ", no history inputs")
        row = [g.task, g.arch, mem, g.training, g.distribution]
        row += [g.variant] if variants else []
        row += [
            str(len(g.runs)),
            fmt_stat(g.stats["improvement"]),
            fmt_stat(g.stats["normalized_improvement"]),
            fmt_stat(g.stats["regret"]),
        ]
        row += [fmt_stat(g.stats.get("regret_ratio"))] if ideal else []
        row += [fmt_stat(g.stats.get(f"{n}.regret")) for n in refs] + [interval_note(g)]
        row += [g.learned.text(g.ideal) if g.learned else "–"]
        rows.append(row)
    return ("table", header, rows)


CONDITIONS_TEXT = (
    "Full condition: memory on, training rl, distribution related. It shows "
    "improvement when its interval lies above 0 (the conditions are then "
    "sufficient); an ablation removes the improvement when its interval "
    "includes 0 or lies below it (the condition it removes is then necessary). "
    "Memory off still sees the last trial's action and reward (it tests memory "
    "beyond one trial); memory and history inputs off sees no history at all. A seed "
    "learned when its own improvement interval (over tasks) lies above 0; separately, "
    "when its regret is at most 2x the ideal observer's. `seeds backing it` counts "
    "the seeds on the verdict's side, so one collapsed seed is counted, not hidden."
)


def conditions_blocks(groups: list[Group]) -> list[Block]:
    """The necessary/sufficient section: a summary per arch and the table of verdicts; one
    sentence instead when no arch ran the full condition (a sweep that tests something else,
    such as task diversity under supervised training), where every verdict would be empty."""
    vs = verdicts(groups)
    head: Block = ("h", 2, "Necessary and sufficient conditions")
    if all(v.stat is None for v in vs if v.condition == FULL_CONDITION):
        return [
            head,
            (
                "p",
                "Not tested by this sweep: no run has the full condition (memory on, training "
                "rl, distribution related), against which the three conditions' ablations "
                "are read.",
            ),
        ]
    variants = any(v.variant for v in vs)
    header = ["task", "arch"] + (["variant"] if variants else [])
    header += ["condition tested", "setting", "improvement [95%]", "seeds", "verdict"]
    header += ["seeds backing it"]
    rows = [
        [v.task, v.arch]
        + ([v.variant] if variants else [])
        + [v.condition, v.setting, fmt_stat(v.stat), str(v.stat.n) if v.stat else "–", v.verdict]
        + [v.backing()]
        for v in vs
    ]
    return [head, ("p", CONDITIONS_TEXT), ("ul", summary_lines(vs)), ("table", header, rows)]


def sweep_label(sweep_dir: Path) -> str:
    """How the report names its sweep: relative to the project or working directory."""
    return portable_path(sweep_dir)


def sweep_title(runs: list[Run], sweep_dir: Path) -> str:
    """The sweep's name: the ``sweep_name`` its runs were launched under when they share one
    (so a study's committed copy, ``results/runs``, keeps it), else the directory's name."""
    names = {r.config.get("sweep_name") for r in runs}
    if len(names) == 1 and isinstance(next(iter(names)), str):
        return next(iter(names))
    return sweep_dir.resolve().name


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _stamp(finished: str | None) -> float | None:
    """A record's finish time as a POSIX time; None when absent or not a stamp."""
    try:
        return parse_stamp(finished) if finished else None
    except ValueError:
        return None


def provenance(runs: list[Run], sweep_dir: Path) -> str:
    """Which sweep, when its runs finished, at which code version, and when the report was made.

    The finish time of a run is the one it recorded (``RunRecord.finished``); a record written
    before that field gives its metrics.json's modification time instead (written last; a
    checkout's time in a fresh clone), and the header says for how many runs. The code version
    is the one the run recorded (``RunRecord.code``: commit and dirty flag).
    """
    stamps = [_stamp(r.record.finished) for r in runs]
    done = sorted(
        s if s is not None else (r.path / "metrics.json").stat().st_mtime
        for r, s in zip(runs, stamps, strict=True)
    )
    first, last = _utc(done[0]), _utc(done[-1])
    when = first if first == last else f"{first} to {last}"
    when += " UTC"
    unstamped = sum(s is None for s in stamps)
    if unstamped:
        when += f" (file times for {unstamped} runs that did not record when they finished)"
    codes: dict[str, int] = {}
    for r in runs:
        code = describe(r.record.code) if r.record.code else "not recorded"
        codes[code] = codes.get(code, 0) + 1
    code_text = ", ".join(f"{c} ({n} runs)" for c, n in sorted(codes.items()))
    return (
        f"Sweep `{sweep_label(sweep_dir)}`; runs finished {when}; "
        f"code: {code_text}. Report made {_utc(datetime.now().timestamp())} UTC at code "
        f"{describe(code_state())}."
    )


def build_blocks(runs: list[Run], skipped: list[Path], sweep_dir: Path, out: Path) -> list[Block]:
    """Every block of the report; writes the figures into ``out/figures``."""
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    n_seeds = sorted({len(g.runs) for g in groups})
    blocks: list[Block] = [
        ("h", 1, f"mesalab sweep report: {sweep_title(runs, sweep_dir)}"),
        ("p", provenance(runs, sweep_dir)),
        (
            "p",
            f"{len(runs)} finished runs in {len(groups)} conditions "
            f"(seeds per condition: {', '.join(map(str, n_seeds))}); "
            f"{len(skipped)} skipped (unfinished or missing metrics.json)"
            + (": " + ", ".join(p.name for p in skipped[:10]) if skipped else "")
            + (" ..." if len(skipped) > 10 else "")
            + ".",
        ),
        (
            "p",
            "Improvement is the post-freeze improvement on held-out tasks (last 10% of the "
            "curve minus first 10%). Intervals are 95% t-intervals over the seeds' means; a "
            "condition with a single seed shows that run's own bootstrap interval over tasks "
            "instead (column `interval`). References ran on the same tasks as the learner.",
        ),
    ]
    if skipped:
        reasons = "; ".join(f"`{p.name}`: {skip_reason(p)}" for p in skipped)
        blocks.append(("p", f"Skipped runs: {reasons}."))
    blocks += conditions_blocks(groups)
    improvement_figure(groups, figs / "improvement.png")
    blocks += [
        ("h", 2, "Post-freeze improvement"),
        ("img", "figures/improvement.png", "post-freeze improvement per arch x condition"),
        results_table(groups, runs),
    ]
    blocks += diversity_blocks(groups, figs) + ood_blocks(groups) + analysis_blocks(groups)
    blocks += controller_blocks(groups)
    blocks += [
        ("h", 2, "Curves against the references"),
        (
            "p",
            "Mean post-freeze curve over seeds (band: one standard deviation across "
            "seeds) against every reference policy on the same tasks.",
        ),
    ]
    for key in dict.fromkeys((g.task, g.arch, g.variant) for g in groups):
        gs = [g for g in groups if (g.task, g.arch, g.variant) == key]
        title = " / ".join(k for k in key if k)
        name = f"curves_{slug('_'.join(k for k in key if k))}.png"
        curves_figure(gs, title, figs / name)
        blocks += [("h", 3, title), ("img", f"figures/{name}", f"curves {title}")]
    blocks += [
        ("h", 2, "All runs"),
        (
            "p",
            "[runs.csv](runs.csv): one row per run (condition, seed, eval metrics with "
            "intervals, references, training speed, frozen check, overrides).",
        ),
    ]
    return blocks


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """Render blocks as GitHub-flavoured markdown."""
    out = []
    for b in blocks:
        if b[0] == "h":
            out.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "ul":
            out.append("\n".join(f"- {item}" for item in b[1]))
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1]})")
        elif b[0] == "table":
            lines = ["| " + " | ".join(map(_md_cell, b[1])) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b[2]]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid
#ccc;padding:3px 7px;text-align:left}th{background:#f2f2f2}tr:nth-child(even){background:#fafafa}
img{max-width:100%;border:1px solid #eee}code{background:#f4f4f4;padding:0 3px}"""


def _inline_html(text: str) -> str:
    """Escape, then render `code` spans and [text](link) of the markdown text."""
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)


def to_html(blocks: list[Block], title: str) -> str:
    """Render blocks as one self-contained HTML page (images referenced relatively)."""
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>"
    ]
    for b in blocks:
        if b[0] == "h":
            out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            out.append(f"<p>{_inline_html(b[1])}</p>")
        elif b[0] == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b[1]) + "</ul>")
        elif b[0] == "img":
            out.append(f'<p><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}"></p>')
        elif b[0] == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                for r in b[2]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(out) + "\n</body></html>\n"


def write_report(runs: list[Run], skipped: list[Path], sweep_dir: Path, out: Path) -> Path:
    """Write report.md, report.html, figures/ and runs.csv into ``out``; returns report.md."""
    out.mkdir(parents=True, exist_ok=True)
    assign_variants(runs)
    blocks = build_blocks(runs, skipped, Path(sweep_dir), out)
    write_csv(runs, out / "runs.csv")
    md = out / "report.md"
    md.write_text(to_markdown(blocks))
    (out / "report.html").write_text(to_html(blocks, blocks[0][2]))
    return md


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``mesalab-report``."""
    parser = argparse.ArgumentParser(
        prog="mesalab-report",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory (one subdir per run)")
    parser.add_argument("--out", type=Path, default=None, help="default: <sweep_dir>/report")
    parser.add_argument(
        "--wandb-report",
        action="store_true",
        help="also save the W&B report (needs `wandb login` and `wandb sync`)",
    )
    parser.add_argument("--project", default=None, help="W&B project (default: the runs')")
    parser.add_argument("--entity", default=None, help="W&B entity (default: your default)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"sweep_dir={str(args.sweep_dir)!r} is not a directory")
    out = args.out or args.sweep_dir / "report"
    runs, skipped = load_sweep(args.sweep_dir, exclude=out.resolve())
    for path in skipped:
        print(f"warning: skipped run {path.name}: {skip_reason(path)}", file=sys.stderr)
    if not runs:
        print(f"error: no finished runs in {args.sweep_dir}", file=sys.stderr)
        return 1
    md = write_report(runs, skipped, args.sweep_dir, out)
    rc = 0
    if args.wandb_report:
        from mesalab.analysis.wandb_report import publish

        rc = publish(args.sweep_dir, runs, args.project, args.entity)
    print(md)
    return rc


if __name__ == "__main__":
    sys.exit(main())
