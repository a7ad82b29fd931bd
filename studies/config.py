"""The structured top-level config (Hydra ConfigStore) and the checks run before training.

The schema makes a typo in a top-level key fail at composition; ``validate`` then checks
values and names the offending field, before anything is built or trained.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from mesalab.studies.conditions import arch_has_memory, signal_class
from mesalab.studies.errors import ConfigError
from mesalab.tasks.distributions import MAX_SEED, MODES


@dataclass
class TaskConfig:
    """A task family: its short name and the ``_target_`` node that builds it."""

    name: str = MISSING
    family: Any = MISSING


@dataclass
class ArchConfig:
    """A learner core: name and the partial that builds it (whose class says if it has memory)."""

    name: str = MISSING
    core: Any = MISSING
    report_order: int = 100  # where the report lists it (lower first, then by name)
    # Optional, and only checked: the core class is what says (``Core.has_memory``).
    has_memory: bool | None = None
    # Optional RL training overrides for this arch (keys: RECIPE_KEYS), read by training=rl*
    recipe: Any = None


@dataclass
class TrainingConfig:
    """A training signal plus the loop's budget and optimizer."""

    name: str = MISSING
    signal: Any = MISSING
    updates: int = 0
    batch_size: int = 256
    optimizer: Any = None
    grad_clip: float | None = 1.0
    lr_final_fraction: float = 1.0  # linear learning-rate decay to this fraction (1 = constant)
    lr_warmup: float = 0.0  # fraction of the updates over which the learning rate rises linearly
    recipe: str | None = None  # the name of the arch's recipe the signal took (rl: "default")


@dataclass
class ConditionConfig:
    """Conditions 1 and 3: memory on/off (None = the arch's own), history inputs, distribution."""

    memory: bool | None = None
    # false: the learner does not see the previous action and feedback (no history at all)
    history_inputs: bool = True
    distribution: str = "related"
    pool_size: int | None = None


@dataclass
class EvalConfig:
    """Post-freeze evaluation and the emergence curve during training."""

    num_tasks: int = 1000
    curve_tasks: int = 200
    every: int = 100  # emergence-curve evaluation every N updates (0 = off)
    greedy: bool = False  # act by argmax instead of sampling the policy (reported as such)
    ood_tasks: int = 200  # tasks per out-of-distribution prior (0 = no OOD evaluation)
    location_tasks: int = 500  # held-out tasks for the location-learning index (0 = off)


@dataclass
class LoggerConfig:
    """Weights & Biases: ``kind: none`` turns it off; the mode is always explicit."""

    kind: str = "wandb"
    mode: str = "offline"
    project: str = "mesalab"
    entity: str | None = None
    group: str | None = None
    every: int = 10  # log training metrics every N updates


@dataclass
class PopulationConfig:
    """Runs trained together as one population (``mesalab.studies.population_run``).

    ``members``: one mapping per member of dotted config keys to values, applied on top of the
    job's config (empty: a solo run). Only the seed and the data side may differ: ``seed``,
    ``condition.distribution``, ``condition.pool_size`` (``MEMBER_KEYS``). The sweeper fills it.
    """

    max_size: int = 8  # the sweeper groups at most this many runs into one job (1: solo jobs)
    streams: str = "shared"  # random streams: shared (faster) or member (composition-free)
    members: list[Any] = field(default_factory=list)


#: what an arch's RL recipe may set (configs/training/rl.yaml reads each, with its default)
RECIPE_KEYS: dict[str, type] = {
    "name": str,
    "lr": float,
    "lr_warmup": float,
    "grad_clip": float,
    "value_coef": float,
    "entropy_coef": float,
    "normalize_advantages": bool,
}


#: the config keys in which members of one population may differ
MEMBER_KEYS = ("seed", "condition.distribution", "condition.pool_size")


@dataclass
class RunConfig:
    """One run: train (or not), freeze, evaluate."""

    task: TaskConfig = field(default_factory=TaskConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    seed: int = 0
    device: str = "auto"
    # torch CPU threads: at these batch sizes a second thread gains nothing on the CPU, and
    # under load (or beside parallel sweep jobs) it costs up to 10x; None = torch's default.
    threads: int | None = 1
    resume: bool = False
    force: bool = False  # rerun even if the run directory holds a finished run
    checkpoint_every: int = 200
    progress: bool = True
    out_root: str = "outputs"
    sweep_name: str = "default"
    run_name: str = MISSING
    study: Any = None


def register_configs() -> None:
    """Put the schema in Hydra's ConfigStore as ``base_config``."""
    ConfigStore.instance().store(name="base_config", node=RunConfig)


def distribution_tag(distribution: str, pool_size: int | None) -> str:
    """``pool8`` for pool(8); the mode name otherwise."""
    return f"pool{pool_size}" if distribution == "pool" else distribution


def memory_flag(cfg: DictConfig) -> bool:
    """The memory condition, resolving ``None`` to the arch's own."""
    mem = cfg.condition.memory
    return arch_has_memory(cfg.arch) if mem is None else bool(mem)


def register_resolvers() -> None:
    """Resolvers used in run names."""
    if not OmegaConf.has_resolver("mesalab_dist"):
        OmegaConf.register_new_resolver("mesalab_dist", distribution_tag)
    if not OmegaConf.has_resolver("mesalab_mem"):
        OmegaConf.register_new_resolver("mesalab_mem", _memory_tag)
    if not OmegaConf.has_resolver("mesalab_job"):
        OmegaConf.register_new_resolver("mesalab_job", job_dir_name)
    if not OmegaConf.has_resolver("mesalab_hist"):
        OmegaConf.register_new_resolver("mesalab_hist", history_tag)


def history_tag(history_inputs: bool) -> str:
    """``_hist-off`` when the history inputs are off; empty otherwise (old run names stay)."""
    return "" if history_inputs else "_hist-off"


def job_dir_name(run_name: str, members: Any) -> str:
    """The job's directory: the run's name, or ``.populations/<hash>`` for a population job.

    A population writes each member into its own run directory beside it (named by the
    member's run name); the job's own directory (Hydra's ``.hydra``, the job log) starts with a
    dot so that the analysis never takes it for a run.
    """
    if not members:
        return run_name
    # the job's own run name too: jobs of other archs or signals may list the same members
    text = json.dumps([run_name, OmegaConf.to_container(members)], sort_keys=True)
    return f"{POPULATION_DIR}/{hashlib.sha1(text.encode()).hexdigest()[:12]}"


POPULATION_DIR = ".populations"


def _memory_tag(memory: bool | None, core_target: str) -> str:
    """``on``/``off``: the memory condition, ``None`` meaning the core class's own."""
    try:
        has = get_class(core_target).has_memory
    except (ImportError, ValueError, TypeError, AttributeError):
        return "unknown"  # a bad arch.core._target_ is named by validation, not in a run name
    return "on" if (has if memory is None else memory) else "off"


def _fail(field_name: str, value: object, allowed: str) -> None:
    raise ConfigError(f"{field_name}={value!r} is not allowed: {field_name} must be {allowed}")


def validate(cfg: DictConfig) -> None:
    """Check values that the schema cannot; every message names the field."""
    c, t, e = cfg.condition, cfg.training, cfg.eval
    if c.distribution not in MODES:
        _fail("condition.distribution", c.distribution, f"one of {list(MODES)}")
    if c.distribution == "pool" and (c.pool_size is None or c.pool_size < 1):
        _fail("condition.pool_size", c.pool_size, "an int >= 1 when condition.distribution=pool")
    has = arch_has_memory(cfg.arch)
    if cfg.arch.has_memory is not None and cfg.arch.has_memory != has:
        _fail(
            "arch.has_memory",
            cfg.arch.has_memory,
            f"{has} (as {cfg.arch.core._target_} says) or unset",
        )
    if c.memory and not has:
        _fail(
            "condition.memory",
            c.memory,
            f"false or null for arch={cfg.arch.name} (it has no memory to switch on)",
        )
    if t.updates < 0:
        _fail("training.updates", t.updates, ">= 0")
    if t.batch_size < 1:
        _fail("training.batch_size", t.batch_size, ">= 1")
    if t.optimizer is not None and "lr" in t.optimizer and not t.optimizer.lr > 0:
        _fail("training.optimizer.lr", t.optimizer.lr, "> 0")
    if not 0.0 <= t.lr_final_fraction <= 1.0:
        _fail("training.lr_final_fraction", t.lr_final_fraction, "in [0, 1]")
    if not 0.0 <= t.lr_warmup < 1.0:
        _fail("training.lr_warmup", t.lr_warmup, "in [0, 1)")
    if t.grad_clip is not None and t.grad_clip <= 0:
        _fail("training.grad_clip", t.grad_clip, "> 0 or null")
    if signal_class(t).updates_weights and t.updates > 0 and t.optimizer is None:
        _fail("training.optimizer", None, "set when training updates the weights")
    for name in ("num_tasks", "curve_tasks"):
        if e[name] < 1:
            _fail(f"eval.{name}", e[name], ">= 1")
    for name in ("every", "ood_tasks"):
        if e[name] < 0:
            _fail(f"eval.{name}", e[name], ">= 0")
    if e.location_tasks == 1 or e.location_tasks < 0:
        _fail("eval.location_tasks", e.location_tasks, "0 (off) or >= 2")
    if cfg.device not in ("auto", "cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        _fail("device", cfg.device, "auto, cpu, cuda or cuda:N")
    if cfg.logger.kind not in ("wandb", "none"):
        _fail("logger.kind", cfg.logger.kind, "wandb or none")
    if cfg.logger.kind == "wandb" and cfg.logger.mode not in ("offline", "online", "disabled"):
        _fail("logger.mode", cfg.logger.mode, "offline, online or disabled")
    if cfg.threads is not None and cfg.threads < 1:
        _fail("threads", cfg.threads, ">= 1 or null")
    if not 0 <= cfg.seed < MAX_SEED:  # above it, the emergence stream's seed is another run's
        _fail("seed", cfg.seed, "in [0, 2**32)")
    if cfg.checkpoint_every < 0:
        _fail("checkpoint_every", cfg.checkpoint_every, ">= 0")
    if cfg.population.max_size < 1:
        _fail("population.max_size", cfg.population.max_size, ">= 1")
    if cfg.population.streams not in ("member", "shared"):
        _fail("population.streams", cfg.population.streams, "member or shared")
    check_members(cfg)


def check_members(cfg: DictConfig) -> None:
    """Members may only differ in ``MEMBER_KEYS`` (shapes, arch and signal are shared)."""
    members = cfg.population.members
    if not all(isinstance(m, DictConfig | dict) for m in members):
        value = OmegaConf.to_container(members) if isinstance(members, ListConfig) else members
        _fail("population.members", value, f"a list of mappings of keys among {list(MEMBER_KEYS)}")
    for i, member in enumerate(members):
        bad = sorted({k for k, _ in flat_items(member)} - set(MEMBER_KEYS))
        if bad:
            _fail(f"population.members[{i}]", bad, f"keys among {list(MEMBER_KEYS)}")


def flat_items(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of a mapping, nested (``{condition: {pool_size: 8}}``) or flat
    (``{condition.pool_size: 8}``, as Hydra parses it)."""
    out = []
    for k, v in node.items():
        key = f"{prefix}{k}"
        out += flat_items(v, f"{key}.") if isinstance(v, DictConfig | dict) else [(key, v)]
    return out
