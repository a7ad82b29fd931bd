"""``mesalab-run``: train (or not), freeze, evaluate; one Hydra app for every combination.

    mesalab-run task=dependent_bandit arch=lstm training=rl
    mesalab-run task=dependent_bandit arch=lstm training=rl condition.memory=false
    mesalab-run --cfg job            # print the composed config

The run directory (``outputs/runs/<run_name>`` by default) receives ``metrics.json``,
``curves.npz``, ``curves.png``, ``checkpoint.pt`` and Hydra's ``.hydra/``.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from mesalab.studies.checkpoint import atomic_write, code_version, load_checkpoint, save_checkpoint
from mesalab.studies.config import (
    distribution_tag,
    memory_flag,
    register_configs,
    register_resolvers,
    validate,
)
from mesalab.studies.evaluate import (
    curve_of,
    evaluate_learner,
    freeze_and_evaluate,
    heldout_tasks,
    summary_scalars,
)
from mesalab.studies.load import build_objects
from mesalab.studies.loop import LoopState, TrainingDiverged, train
from mesalab.studies.plots import plot_curves
from mesalab.studies.wandb_logger import NullLogger, WandbLogger
from mesalab.tasks.distributions import stream_generator

log = logging.getLogger("mesalab.run")
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
METRIC_KEYS = (
    "task",
    "arch",
    "training",
    "memory",
    "distribution",
    "seed",
    "train",
    "eval",
    "references",
    "frozen",
    "location",
    "ood",
)


def is_finished(run_dir: Path) -> bool:
    """A finished run is one whose ``metrics.json`` is complete (written last, atomically)."""
    path = run_dir / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return all(k in data for k in METRIC_KEYS)


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} is not allowed: no CUDA device is available here")
    return torch.device(name)


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each update."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some launchers): no handler
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def make_logger(cfg: DictConfig, run_dir: Path, memory: bool) -> NullLogger:
    """W&B (offline by default) or nothing."""
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
    )


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """Train, freeze, evaluate and write the run directory; returns metrics (None if skipped)."""
    validate(cfg)
    run_dir = Path(run_dir)
    if is_finished(run_dir) and not cfg.force:
        log.info("already finished, skipping: %s (force=true reruns it)", run_dir)
        return None
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    memory = memory_flag(cfg)
    torch.manual_seed(cfg.seed)
    family, dist, learner = build_objects(cfg, device)
    signal_ = instantiate(cfg.training.signal)
    tcfg = cfg.training
    optimizer = instantiate(tcfg.optimizer)(learner.parameters()) if tcfg.optimizer else None
    env_gen = stream_generator(cfg.seed, "train", device)
    pol_gen = stream_generator(cfg.seed, "policy", device)
    ckpt_path = run_dir / "checkpoint.pt"
    state = LoopState()
    resolved = OmegaConf.to_container(cfg, resolve=True)

    def payload(final: bool) -> dict[str, Any]:
        return {
            "learner": learner.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer else None,
            "loop": vars(state),
            "final": final,
            "rng": {"env": env_gen.get_state(), "policy": pol_gen.get_state()},
            "config": resolved,
            "code_version": code_version(),
        }

    if cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        learner.load_state_dict(ck["learner"])
        if optimizer and ck["optimizer"]:
            optimizer.load_state_dict(ck["optimizer"])
        state = LoopState(**ck["loop"])
        env_gen.set_state(ck["rng"]["env"])
        pol_gen.set_state(ck["rng"]["policy"])
        log.info("resumed from update %d", state.update)

    logger = make_logger(cfg, run_dir, memory)
    # The emergence curve uses its own, smaller held-out set (seed stream of seed + 1).
    curve_latent = heldout_tasks(dist, cfg.eval.curve_tasks, cfg.seed + 1, device)
    emergence = state.history.setdefault("emergence", [])

    def emergence_point(update: int) -> None:
        ev = evaluate_learner(learner, family, curve_latent, cfg.seed + 1, cfg.eval.greedy)
        emergence.append([update, ev["improvement"], ev["regret"], *curve_of(ev).tolist()])
        logger.log(
            {"emergence/improvement": ev["improvement"], "emergence/regret": ev["regret"]},
            step=update,
        )

    updates = tcfg.updates if signal_.updates_weights else 0
    if cfg.eval.every and not emergence:
        emergence_point(0)
    bar = tqdm(
        total=updates,
        initial=state.update,
        disable=not cfg.progress or updates == 0,
        desc=cfg.run_name,
        unit="upd",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    stop = StopRequest()

    def on_update(st: LoopState, metrics: dict[str, float]) -> bool:
        bar.update(1)
        bar.set_postfix(
            sps=f"{metrics['charts/steps_per_s']:.0f}", reward=f"{metrics['train/mean_reward']:.3f}"
        )
        if st.update % cfg.logger.every == 0 or st.update == updates:
            logger.log(metrics, step=st.update)
        if cfg.eval.every and (st.update % cfg.eval.every == 0):
            emergence_point(st.update)
        if cfg.checkpoint_every and st.update % cfg.checkpoint_every == 0:
            save_checkpoint(ckpt_path, payload(final=False))
        if stop.requested:
            save_checkpoint(ckpt_path, payload(final=False))
            return False
        return True

    with logging_redirect_tqdm(), stop:
        try:
            state = train(
                learner,
                optimizer,
                signal_,
                family,
                dist,
                updates,
                tcfg.batch_size,
                env_gen,
                pol_gen,
                tcfg.grad_clip,
                state,
                on_update,
                tcfg.lr_final_fraction,
            )
        except TrainingDiverged as err:
            bar.close()
            logger.finish()
            raise TrainingDiverged(f"{err}; last good checkpoint kept at {ckpt_path}") from err
    bar.close()
    if stop.requested:
        logger.finish()
        raise SystemExit(f"interrupted at update {state.update}; resume with resume=true")

    save_checkpoint(ckpt_path, payload(final=True))
    e = cfg.eval
    result = freeze_and_evaluate(
        learner,
        family,
        dist,
        e.num_tasks,
        cfg.seed,
        e.greedy,
        device,
        ood_tasks=e.ood_tasks,
        location_tasks=e.location_tasks,
    )
    metrics = {
        "task": cfg.task.name,
        "arch": cfg.arch.name,
        "training": cfg.training.name,
        "memory": memory,
        "distribution": distribution_tag(cfg.condition.distribution, cfg.condition.pool_size),
        "seed": int(cfg.seed),
        "train": {
            "env_steps": state.env_steps,
            "wall_s": state.wall_s,
            "env_steps_per_s": state.env_steps / state.wall_s if state.wall_s else 0.0,
        },
        "eval": result["eval"],
        "references": result["references"],
        "frozen": result["frozen"],
        "location": result["location"],  # None without a training pool (related, trialwise)
        "ood": result["ood"],
    }
    curves = {"learner": curve_of(result["eval"])}
    curves.update({k: curve_of(v) for k, v in result["references"].items()})
    arrays = {f"curve/{k}": v for k, v in curves.items()}
    if emergence:
        arrays["emergence"] = np.asarray(emergence, dtype=np.float64)
    atomic_write(run_dir / "curves.npz", lambda tmp: np.savez(open(tmp, "wb"), **arrays))
    png = plot_curves(
        curves,
        run_dir / "curves.png",
        title=cfg.run_name,
        ylabel="loss" if family.kind == "prediction" else "expected reward",
    )
    logger.log_eval(
        curves,
        {
            "eval/improvement": metrics["eval"]["improvement"],
            "eval/regret": metrics["eval"]["regret"],
            "eval/normalized_improvement": metrics["eval"]["normalized_improvement"],
            **summary_scalars(result),
        },
        png,
    )
    logger.finish()
    # metrics.json is written last: its presence marks a finished run.
    atomic_write(
        run_dir / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=1))
    )
    log.info(
        "improvement %.4f regret %.3f (ideal %s) -> %s",
        metrics["eval"]["improvement"],
        metrics["eval"]["regret"],
        family.ideal_reference,
        run_dir,
    )
    return metrics


register_configs()
register_resolvers()


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script ``mesalab-run``)."""
    t0 = time.time()
    run(cfg, Path(HydraConfig.get().runtime.output_dir))
    log.info("done in %.1f s", time.time() - t0)


if __name__ == "__main__":
    main()
