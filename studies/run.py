"""``mesalab-run``: train (or not), freeze, evaluate; one Hydra app for every combination.

    mesalab-run task=dependent_bandit arch=lstm training=rl
    mesalab-run task=dependent_bandit arch=lstm training=rl condition.memory=false
    mesalab-run --cfg job            # print the composed config

The run directory (``outputs/runs/<run_name>`` by default) receives ``metrics.json``,
``curves.npz``, ``curves.png``, ``checkpoint.pt`` and Hydra's ``.hydra/``.

A :class:`Run` is built once from the config and then goes through its steps: ``train``
(with the callbacks of ``mesalab.studies.callbacks``), ``freeze_and_evaluate``, ``write``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from mesalab.studies.callbacks import Callback, default_callbacks
from mesalab.studies.checkpoint import atomic_write, save_checkpoint
from mesalab.studies.config import (
    distribution_tag,
    memory_flag,
    register_configs,
    register_resolvers,
)
from mesalab.studies.device import describe_device, keep_freed_memory, resolve_device
from mesalab.studies.errors import Interrupted, clean_exit, signal_name
from mesalab.studies.evaluate import Evaluation, curve_of, freeze_and_evaluate, summary_scalars
from mesalab.studies.load import build_objects
from mesalab.studies.loop import LoopState, TrainingDiverged, train
from mesalab.studies.objective import JobResult, job_result
from mesalab.studies.plots import plot_curves
from mesalab.studies.population_run import member_configs, member_root, run_population
from mesalab.studies.record import RunRecord, Train, read_record, utc_stamp
from mesalab.studies.resume import check_finished, resume_from
from mesalab.studies.validation import check_config
from mesalab.studies.version import code_state
from mesalab.studies.wandb_logger import NullLogger, WandbLogger
from mesalab.tasks.distributions import stream_generator, stream_seed

log = logging.getLogger("mesalab.run")
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def is_finished(run_dir: Path) -> bool:
    """A finished run is one whose ``metrics.json`` is a complete record (written last)."""
    return read_record(Path(run_dir)) is not None


def make_logger(
    cfg: DictConfig, run_dir: Path, memory: bool, reinit: str = "finish_previous"
) -> NullLogger:
    """W&B (offline by default) or nothing; ``reinit="create_new"`` for runs open together."""
    if cfg.logger.kind == "none":
        return NullLogger()
    dist = distribution_tag(cfg.condition.distribution, cfg.condition.pool_size)
    return WandbLogger(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group=cfg.logger.group or cfg.sweep_name,
        job_type=cfg.training.name,
        name=cfg.run_name,
        tags=[
            cfg.task.name,
            cfg.arch.name,
            cfg.training.name,
            f"memory-{'on' if memory else 'off'}",
            dist,
        ],
        config=OmegaConf.to_container(cfg, resolve=True),
        run_dir=run_dir,
        reinit=reinit,
    )


class Run:
    """One run, built once from its (validated) config: train -> freeze -> evaluate -> write.

    Every random stream is a named stream of the run seed (``mesalab.tasks.distributions``):
    ``init`` for the initial weights, ``train`` and ``policy`` for training rollouts,
    ``eval``/``ood``/``pool`` inside evaluation and the distribution, ``emergence`` for the
    emergence curve.
    """

    def __init__(
        self, cfg: DictConfig, run_dir: Path, callbacks: list[Callback] | None = None
    ) -> None:
        check_config(cfg)  # every key and value, before anything is built
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = resolve_device(cfg.device)
        keep_freed_memory()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.memory = memory_flag(cfg)
        # Modules draw their initial weights from torch's global generator.
        torch.manual_seed(stream_seed(cfg.seed, "init"))
        self.family, self.distribution, self.learner = build_objects(cfg, self.device)
        self.signal = instantiate(cfg.training.signal)
        tcfg = cfg.training
        self.optimizer = (
            # trainable weights only (GPT-2's unused token table is frozen), the same list a
            # population member's optimizer holds, so its state carries over either way
            instantiate(tcfg.optimizer)([p for p in self.learner.parameters() if p.requires_grad])
            if tcfg.optimizer
            else None
        )
        self.env_gen = stream_generator(cfg.seed, "train", self.device)
        self.policy_gen = stream_generator(cfg.seed, "policy", self.device)
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        self.state = LoopState()
        self.stopped = False  # a callback asked training to stop
        self.stop_signal = 0  # the signal that asked it (StopOnSignal), 0 for none
        self.updates = tcfg.updates if self.signal.updates_weights else 0
        self.callbacks = default_callbacks() if callbacks is None else callbacks
        self.logger: NullLogger = NullLogger()
        self.population: list[str] | None = None  # set by a population job (the run record's)
        #: the record's finish time; None: now, when the record is made (mesalab-reevaluate
        #: sets the recorded one, so a run evaluated again keeps when it finished)
        self.finished: str | None = None
        #: the device the record names (mesalab-reevaluate keeps the old record's: None, and
        #: no field, for records written before it)
        self.trained_on: str | None = describe_device(self.device)
        self._resolved = OmegaConf.to_container(cfg, resolve=True)
        #: the checkout this run was built from, read once: a commit made while it trains
        #: must not be recorded as the code that trained it
        self.code = code_state()

    def payload(self, final: bool) -> dict[str, Any]:
        """The checkpoint: weights, optimizer, loop state, generators, resolved config."""
        return {
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "loop": vars(self.state),
            "final": final,
            "rng": {"env": self.env_gen.get_state(), "policy": self.policy_gen.get_state()},
            "config": self._resolved,
            "code_version": self.code["commit"],
        }

    def resume(self) -> None:
        """Continue from ``checkpoint.pt`` (weights, optimizer, loop state, generators) after
        checking that it was written by this run's config (``mesalab.studies.resume``)."""
        gens = {"env": self.env_gen, "policy": self.policy_gen}
        self.state = resume_from(
            self.checkpoint_path, self._resolved, self.learner, self.optimizer, gens, self.device
        )

    def _on_update(self, state: LoopState, metrics: dict[str, float]) -> bool:
        """Every callback, in order; training stops if any says so."""
        go = True
        for cb in self.callbacks:
            go = cb.on_update(self, state, metrics) is not False and go
        self.stopped = self.stopped or not go
        return go

    def train(self) -> LoopState:
        """The training step; a stop request ends it with a checkpoint and ``Interrupted``."""
        tcfg = self.cfg.training
        for cb in self.callbacks:
            cb.on_start(self)
        try:
            with logging_redirect_tqdm():
                self.state = train(
                    self.learner,
                    self.optimizer,
                    self.signal,
                    self.family,
                    self.distribution,
                    updates=self.updates,
                    batch_size=tcfg.batch_size,
                    env_gen=self.env_gen,
                    policy_gen=self.policy_gen,
                    grad_clip=tcfg.grad_clip,
                    state=self.state,
                    on_update=self._on_update,
                    lr_final_fraction=tcfg.lr_final_fraction,
                    lr_warmup=tcfg.lr_warmup,
                )
        except TrainingDiverged as err:
            self._end(finish_logger=True)
            msg = f"{err}; last good checkpoint kept at {self.checkpoint_path}"
            raise TrainingDiverged(msg) from err
        self._end(finish_logger=False)
        if self.stopped:
            self.logger.finish()
            by = f" by {signal_name(self.stop_signal)}" if self.stop_signal else ""
            raise Interrupted(
                self.stop_signal,
                f"interrupted{by} at update {self.state.update}, checkpoint saved at "
                f"{self.checkpoint_path}; resume with resume=true",
            )
        save_checkpoint(self.checkpoint_path, self.payload(final=True))
        return self.state

    def _end(self, finish_logger: bool) -> None:
        for cb in self.callbacks:
            cb.on_end(self)
        if finish_logger:
            self.logger.finish()

    def freeze_and_evaluate(self) -> Evaluation:
        """The post-freeze evaluation (weights digest before and after)."""
        e = self.cfg.eval
        return freeze_and_evaluate(
            self.learner,
            self.family,
            self.distribution,
            e.num_tasks,
            self.cfg.seed,
            e.greedy,
            self.device,
            ood_tasks=e.ood_tasks,
            location_tasks=e.location_tasks,
        )

    def record(self, ev: Evaluation) -> RunRecord:
        """The run record of this run and its evaluation."""
        cfg, st = self.cfg, self.state
        return RunRecord(
            task=cfg.task.name,
            arch=cfg.arch.name,
            training=cfg.training.name,
            memory=self.memory,
            distribution=distribution_tag(cfg.condition.distribution, cfg.condition.pool_size),
            seed=int(cfg.seed),
            train=Train(
                env_steps=st.env_steps,
                wall_s=st.wall_s,
                env_steps_per_s=st.env_steps / st.wall_s if st.wall_s else 0.0,
            ),
            eval=ev.eval,
            references=ev.references,
            frozen=ev.frozen,
            location=ev.location,
            ood=ev.ood,
            code=self.code,  # commit and dirty flag, read by mesalab-report's header
            finished=self.finished or utc_stamp(time.time()),
            population=self.population,
            history_inputs=bool(cfg.condition.history_inputs),
            recipe=cfg.training.get("recipe"),
            device=self.trained_on,
        )

    def write(self, ev: Evaluation) -> RunRecord:
        """curves.npz, curves.png, the logger's summary and, last, metrics.json."""
        rec = self.record(ev)
        curves = {"learner": curve_of(ev.eval)}
        curves.update({k: curve_of(v) for k, v in ev.references.items()})
        arrays = {f"curve/{k}": v for k, v in curves.items()}
        emergence = self.state.history.get("emergence")
        if emergence:
            arrays["emergence"] = np.asarray(emergence, dtype=np.float64)
        atomic_write(self.run_dir / "curves.npz", lambda tmp: np.savez(open(tmp, "wb"), **arrays))
        png = plot_curves(
            curves,
            self.run_dir / "curves.png",
            title=self.cfg.run_name,
            ylabel="loss" if self.family.kind == "prediction" else "expected reward",
        )
        self.logger.log_eval(
            curves,
            {
                "eval/improvement": ev.eval.improvement,
                "eval/regret": ev.eval.regret,
                "eval/normalized_improvement": ev.eval.normalized_improvement,
                **summary_scalars(ev.location, ev.ood),
            },
            png,
        )
        self.logger.finish()
        rec.write(self.run_dir / "metrics.json")  # last: its presence marks a finished run
        return rec

    def open_logger(self, reinit: str = "finish_previous") -> None:
        """Start the run's logger (``reinit="create_new"``: beside other open runs)."""
        self.logger = make_logger(self.cfg, self.run_dir, self.memory, reinit)

    def begin(self) -> None:
        """Resume when asked (``force=true`` starts afresh over any checkpoint); otherwise say
        so when a checkpoint of an interrupted run is about to be trained over."""
        if self.cfg.force:
            return
        if self.cfg.resume:
            self.resume()
        elif self.checkpoint_path.exists():
            log.warning(
                "%s holds the checkpoint of an interrupted run: training afresh over it "
                "(resume=true continues it)",
                self.run_dir,
            )

    def execute(self) -> RunRecord:
        """Every step, resuming first when asked and a checkpoint exists."""
        self.begin()
        self.open_logger()
        self.train()
        rec = self.write(self.freeze_and_evaluate())
        log.info(
            "improvement %.4f regret %.3f (ideal %s) -> %s",
            rec.eval.improvement,
            rec.eval.regret,
            self.family.ideal_reference,
            self.run_dir,
        )
        return rec


def run(cfg: DictConfig, run_dir: Path) -> RunRecord | None:
    """Train, freeze, evaluate and write the run directory; its record (None if skipped)."""
    check_config(cfg)  # every key and value, before anything runs
    if is_finished(Path(run_dir)) and not cfg.force:
        check_finished(Path(run_dir), OmegaConf.to_container(cfg, resolve=True))  # same config?
        log.info("already finished, skipping: %s (force=true reruns it)", run_dir)
        return None
    return Run(cfg, run_dir).execute()


register_configs()
register_resolvers()


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> JobResult:
    """Hydra entry point (console script ``mesalab-run``).

    Returns the job's objective for sweepers: the mean frozen regret ratio of its runs (over a
    population's members), marked ``skipped`` when every run was already finished.
    """
    t0 = time.time()
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    # bad config/checkpoint: message + status 2 (in a sweep: a failed run); signal: 128 + signum
    with clean_exit(config_errors=hc.mode != RunMode.MULTIRUN):
        if cfg.population.members:  # a population job: each member a Run of its own
            records = run_population(cfg, out, Run, list(hc.overrides.task))
            dirs = [member_root(out) / c.run_name for c in member_configs(cfg)]
        else:
            records = [run(cfg, out)]
            dirs = [out]
        result = job_result(cfg, dirs, skipped=all(r is None for r in records))
    log.info("done in %.1f s, regret ratio %.3f", time.time() - t0, result)
    return result


if __name__ == "__main__":
    main()
