"""The W&B report of a sweep: the same comparison as the local report, as W&B panels.

Runs are logged offline by default. With a W&B login, upload them and save the report with::

    wandb login
    wandb sync outputs/sweeps/<sweep>/*/wandb/offline-run-*
    mesalab-report outputs/sweeps/<sweep> --wandb-report [--project mesalab] [--entity ME]

Without a login, ``--wandb-report`` says so and exits 0: the local report stands alone.
Nothing here touches the network before the login check (W&B's online calls block for a long
time without a server).

Run sets select the sweep's runs (W&B group = sweep name) of one task and group them by the
resolved Hydra config: ``arch.name``, ``training.name``, ``condition.memory`` and
``condition.distribution``. Panels: post-freeze improvement bars (``eval/improvement``,
mean and standard error over seeds), normalized improvement and regret bars, the emergence
curve during training (``emergence/improvement``) and the post-freeze reward curves
(``eval/curve_plot``: the learner against every reference).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from mesalab.analysis.sweep import Run

#: the one-line message printed when there is no W&B login
NO_LOGIN = (
    "no W&B login: run `wandb login` then `wandb sync {dir}/*/wandb/offline-run-*` and re-run "
    "with --wandb-report; the local report stands alone"
)
#: the resolved-config keys the run sets are grouped by
GROUP_KEYS = ("arch.name", "training.name", "condition.memory", "condition.distribution")


def has_login() -> bool:
    """Whether a W&B API key is configured (environment, netrc or session); no network call."""
    import wandb

    # wandb.api is deprecated and says so on stderr; the key lookup itself is what we need.
    with contextlib.redirect_stderr(io.StringIO()):
        return bool(wandb.api.api_key)


def sweep_group(runs: list[Run], sweep_dir: Path) -> str:
    """The W&B group of the sweep's runs: ``logger.group`` or ``sweep_name`` of their config."""
    for r in runs:
        logger = r.config.get("logger") or {}
        name = logger.get("group") or r.config.get("sweep_name")
        if name:
            return str(name)
    return Path(sweep_dir).resolve().name


def sweep_project(runs: list[Run]) -> str | None:
    """The W&B project the runs were logged to (``logger.project``), if recorded."""
    for r in runs:
        project = (r.config.get("logger") or {}).get("project")
        if project:
            return str(project)
    return None


def _runset(
    wr, expr, project: str, entity: str, name: str, group: str, tags: list[str], groupby: list[str]
):
    filters = [expr.Metric("Group") == group] + [expr.Tags().isin([t]) for t in tags]
    return wr.Runset(
        entity=entity,
        project=project,
        name=name,
        filters=filters,
        groupby=[f"config.{k}" for k in groupby],
    )


def _panels(wr, curves: bool) -> list:
    bars = [
        wr.BarPlot(
            title="post-freeze improvement (mean, stderr over seeds)",
            metrics=[wr.SummaryMetric("eval/improvement")],
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=wr.Layout(x=0, y=0, w=12, h=8),
        ),
        wr.BarPlot(
            title="normalized improvement (1 = ideal observer)",
            metrics=[wr.SummaryMetric("eval/normalized_improvement")],
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=wr.Layout(x=12, y=0, w=12, h=8),
        ),
        wr.BarPlot(
            title="post-freeze regret",
            metrics=[wr.SummaryMetric("eval/regret")],
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=wr.Layout(x=0, y=8, w=12, h=8),
        ),
        wr.LinePlot(
            title="emergence: post-freeze improvement during training",
            x="Step",
            y=[wr.Metric("emergence/improvement")],
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=wr.Layout(x=12, y=8, w=12, h=8),
        ),
    ]
    if curves:
        # the table logged by wandb.plot.line_series under eval/curve_plot
        bars.append(
            wr.CustomChart(
                query={"summaryTable": {"tableKey": "eval/curve_plot_table"}},
                chart_name="wandb/lineseries/v0",
                chart_fields={"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"},
                chart_strings={
                    "title": "post-freeze curve: learner vs references",
                    "xname": "trial",
                },
                layout=wr.Layout(x=0, y=16, w=24, h=10),
            )
        )
    return bars


def build_report(project: str, entity: str, group: str, tasks: list[str], archs: list[str]):
    """The report definition (built offline: ``entity`` must be given, nothing is sent)."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    blocks: list = [
        wr.H1(f"mesalab sweep {group}: which conditions make in-context learning emerge?"),
        wr.P(
            "Post-freeze improvement of every learner, grouped by arch, training, memory and "
            "distribution (W&B group = the sweep). The full condition is memory on, training "
            "rl, distribution related; each ablation changes one of them. mesalab-report "
            "writes the same comparison with t-intervals over seeds and the "
            "necessary/sufficient table to <sweep dir>/report/report.md."
        ),
        wr.TableOfContents(),
    ]
    for task in tasks:
        blocks += [
            wr.H2(f"{task}: every arch and condition"),
            wr.PanelGrid(
                runsets=[
                    _runset(
                        wr,
                        expr,
                        project,
                        entity,
                        f"{task}: arch x condition",
                        group,
                        [task],
                        list(GROUP_KEYS),
                    )
                ],
                panels=_panels(wr, curves=False),
            ),
        ]
        for arch in archs:
            blocks += [
                wr.H3(f"{task} / {arch}: conditions against the references"),
                wr.PanelGrid(
                    runsets=[
                        _runset(
                            wr,
                            expr,
                            project,
                            entity,
                            f"{task} {arch}",
                            group,
                            [task, arch],
                            list(GROUP_KEYS[1:]),
                        )
                    ],
                    panels=_panels(wr, curves=True),
                ),
            ]
    return wr.Report(
        project=project,
        entity=entity,
        title=f"mesalab: {group}",
        description="three conditions: memory, RL training, related tasks",
        blocks=blocks,
        width="fluid",
    )


def publish(sweep_dir: Path, runs: list[Run], project: str | None, entity: str | None) -> int:
    """Save the W&B report when logged in (returns 0), else print how to (also 0)."""
    offline = sorted(Path(sweep_dir).glob("*/wandb/offline-run-*"))
    if not has_login():
        print(NO_LOGIN.format(dir=sweep_dir))
        if not offline:
            print("(no offline W&B runs under this sweep: were its runs made with logger=none?)")
        return 0
    import wandb

    project = project or sweep_project(runs) or "mesalab"
    entity = entity or wandb.Api().default_entity
    tasks = list(dict.fromkeys(r.record.task for r in runs))
    archs = list(dict.fromkeys(r.record.arch for r in runs))
    report = build_report(project, entity, sweep_group(runs, sweep_dir), tasks, archs)
    try:
        report.save()
    except Exception as err:  # noqa: BLE001 (any server-side failure: say it, keep going)
        print(f"W&B report not saved ({type(err).__name__}: {err}); the local report stands")
        return 1
    print(f"W&B report: {report.url}")
    return 0
