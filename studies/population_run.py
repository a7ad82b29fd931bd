"""A population job: several runs trained as one population, each written as a normal run.

``population.members`` lists, per member, the keys in which it differs from the job's config
(seed, distribution mode, pool size: ``MEMBER_KEYS``). Each member is a :class:`Run` of its own
config in its own run directory (beside the job's ``.populations/<hash>``), with the files of
a solo run; only the training loop is shared (``mesalab.studies.loop.train_population``),
after which each member's weights are written back into its own learner and it is evaluated,
checkpointed and written by the solo code.

Per member: a finished member is skipped (``force=true`` reruns it); ``resume=true`` continues
each member from its own checkpoint (members at different updates train as separate
populations); a member whose loss is not finite stops alone (its run directory receives
``error.txt``, the last good checkpoint stays), the others finish, and then the job fails
naming it; SIGTERM/SIGINT checkpoint every member and end the job with 128 + the signal.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from mesalab.archs.population import PopulationLearner, supports
from mesalab.studies.callbacks import (
    Callback,
    Checkpointing,
    Emergence,
    LogMetrics,
    ProgressBar,
    StopOnSignal,
)
from mesalab.studies.checkpoint import atomic_write, save_checkpoint
from mesalab.studies.config import POPULATION_DIR, check_members, flat_items
from mesalab.studies.errors import ConfigError, Interrupted, signal_name
from mesalab.studies.loop import PopulationState, TrainingDiverged, train_population
from mesalab.studies.population import Member
from mesalab.studies.record import RunRecord, read_record
from mesalab.studies.resume import check_finished
from mesalab.studies.validation import check_config

#: ``mesalab.studies.run.Run`` (passed in by ``run.py``: this module cannot import it, which
#: would close an import cycle); what is used of it is named in each function
Run = Any

log = logging.getLogger("mesalab.run")


def member_overrides(member: DictConfig) -> list[str]:
    """A member's keys as command-line overrides (``seed=3``, ``condition.pool_size=null``)."""
    out = []
    for key, value in flat_items(member):
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        out.append(f"{key}={text}")
    return out


def member_configs(cfg: DictConfig) -> list[DictConfig]:
    """Each member's run config: the job's config with the member's keys set, no members."""
    out = []
    for member in cfg.population.members:
        c = copy.deepcopy(cfg)
        for key, value in flat_items(member):
            OmegaConf.update(c, key, value, merge=False)
        c.population.members = []
        out.append(c)
    return out


def member_root(job_dir: Path) -> Path:
    """Where members' run directories go: beside ``.populations`` (or beside the job's dir)."""
    job_dir = Path(job_dir)
    return job_dir.parent.parent if job_dir.parent.name == POPULATION_DIR else job_dir.parent


def write_hydra_files(run: Run, overrides: list[str]) -> None:
    """The ``.hydra/`` a solo job of this run would have: its config and its overrides."""
    folder = run.run_dir / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(run.cfg, folder / "config.yaml")
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides, default_flow_style=False))


def member_callbacks(first: bool) -> list[Callback]:
    """A member's callbacks: the solo ones minus signals (the population handles them once)."""
    return [ProgressBar()] * first + [LogMetrics(), Emergence(), Checkpointing()]


def run_population(
    cfg: DictConfig,
    job_dir: Path,
    new_run: Callable[[DictConfig, Path, list[Callback]], Run],
    job_overrides: list[str] | None = None,
) -> list[RunRecord | None]:
    """Train, evaluate and write every member; a record per member (None: skipped, failed)."""
    check_members(cfg)  # each member's own config is checked whole below
    cfgs = member_configs(cfg)
    root = member_root(job_dir)
    dirs = [root / c.run_name for c in cfgs]
    if len(set(dirs)) != len(dirs):
        names = [d.name for d in dirs]
        raise ConfigError(f"population.members={names} is not allowed: two members share a run")
    common = [o for o in job_overrides or [] if not o.startswith("population.members")]
    records: list[RunRecord | None] = [None] * len(cfgs)
    todo: list[int] = []
    for i, (c, d) in enumerate(zip(cfgs, dirs, strict=True)):
        check_config(c)
        if read_record(d) is not None and not c.force:  # finished (metrics.json is last)
            check_finished(d, OmegaConf.to_container(c, resolve=True))
            log.info("already finished, skipping: %s (force=true reruns it)", d)
            continue
        todo.append(i)
    if not todo:
        return records
    runs = {i: new_run(cfgs[i], dirs[i], member_callbacks(i == todo[0])) for i in todo}
    for i, r in runs.items():
        write_hydra_files(r, common + member_overrides(cfg.population.members[i]))
        r.begin()
    diverged: list[str] = []
    ordered = [runs[i] for i in todo]
    # Members resumed at different updates train as separate populations (one loop index).
    by_update = sorted(ordered, key=lambda r: r.state.update)
    for _, group in groupby(by_update, lambda r: r.state.update):
        diverged += train_together(list(group), cfg.population.streams)
    for i, r in runs.items():
        if r.run_dir.name not in diverged:
            records[i] = r.write(r.freeze_and_evaluate())
            log.info("improvement %.4f -> %s", records[i].eval.improvement, r.run_dir)
    if diverged:
        raise TrainingDiverged(
            f"{len(diverged)} of {len(cfgs)} members diverged, see error.txt in: {diverged}"
        )
    return records


def train_together(runs: list[Run], streams: str) -> list[str]:
    """Train these members as one population; the names of those that diverged."""
    r0 = runs[0]
    if not supports(r0.learner) or not r0.signal.updates_weights or r0.optimizer is None:
        return train_one_by_one(runs)
    for r in runs:
        r.open_logger(reinit="create_new")
        r.population = [x.run_dir.name for x in runs] if streams == "shared" else None
    if len(runs) == 1:
        r0.population = None  # a population of one is the solo run
    pop = PopulationLearner.stack([r.learner for r in runs])
    for i, r in enumerate(runs):
        # The member's optimizer over its rows: the solo optimizer's state carries over.
        opt = instantiate(r.cfg.training.optimizer)(pop.member_parameters(i))
        opt.load_state_dict(r.optimizer.state_dict())
        r.optimizer = opt
    state = PopulationState([r.state for r in runs], [None] * len(runs), update=r0.state.update)
    stop = StopOnSignal()
    stop.on_start(r0)
    for r in runs:
        for cb in r.callbacks:
            cb.on_start(r)
    ended: set[int] = set()

    def on_update(st: PopulationState, metrics: list[dict[str, float]]) -> bool:
        pop.write_back([r.learner for r in runs])  # callbacks and checkpoints see solo learners
        go = True
        for i, (r, m) in enumerate(zip(runs, metrics, strict=True)):
            if st.errors[i] is not None and i not in ended:
                end_diverged(r, st.errors[i])
                ended.add(i)
            if not m:
                continue
            r.state = st.members[i]
            go = r._on_update(r.state, m) and go
            go = stop.on_update(r, r.state, m) and go
        return go

    tcfg = r0.cfg.training
    try:
        with logging_redirect_tqdm():
            train_population(
                pop,
                [r.optimizer for r in runs],
                r0.signal,
                r0.family,
                [Member(r.distribution, r.env_gen, r.policy_gen) for r in runs],
                r0.updates,
                tcfg.batch_size,
                tcfg.grad_clip,
                state,
                on_update,
                tcfg.lr_final_fraction,
                streams,
                tcfg.lr_warmup,
            )
    finally:
        stop.on_end(r0)
    pop.write_back([r.learner for r in runs])
    alive = [r for i, r in enumerate(runs) if i not in ended]
    for r in alive:
        r._end(finish_logger=stop.requested)
    if stop.requested:
        raise Interrupted(
            stop.signum,
            f"interrupted by {signal_name(stop.signum)} at update {state.update}, a checkpoint "
            f"saved in each of {[r.run_dir.name for r in alive]}; resume with resume=true",
        )
    for r in alive:
        save_checkpoint(r.checkpoint_path, r.payload(final=True))
    return [runs[i].run_dir.name for i in sorted(ended)]


def end_diverged(run: Run, error: str) -> None:
    """A member that stopped alone: its callbacks end, the error goes into its run directory."""
    run._end(finish_logger=True)
    text = f"{error}; last good checkpoint kept at {run.checkpoint_path}\n"
    atomic_write(run.run_dir / "error.txt", lambda tmp: Path(tmp).write_text(text))
    log.error("%s: %s", run.run_dir.name, text.strip())


def train_one_by_one(runs: list[Run]) -> list[str]:
    """Members without a population computation (or without training): solo, in turn."""
    diverged = []
    for r in runs:
        r.open_logger(reinit="create_new")
        r.callbacks.append(StopOnSignal())
        try:
            r.train()
        except TrainingDiverged as err:
            atomic_write(r.run_dir / "error.txt", lambda tmp, e=err: Path(tmp).write_text(f"{e}\n"))
            diverged.append(r.run_dir.name)
    return diverged
