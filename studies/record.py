"""The run record: ``metrics.json`` as typed dataclasses, written and read by the same code.

A run writes one :class:`RunRecord` (``RunRecord.write``); the report, the loaders and the
checks read it back with :func:`read_record`. The JSON keys are the field names, in field
order (DESIGN.md, "Outputs of a run"); a field marked ``optional`` is left out when it is
``None`` (a decision task has no ``loss_curve``), any other ``None`` is written as ``null``.
``version`` counts changes of this schema; records written before it existed read as 0.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from mesalab.studies.checkpoint import atomic_write

RECORD_VERSION = 1
T = TypeVar("T")


def optional() -> Any:
    """A field left out of the JSON when it is ``None``."""
    return field(default=None, metadata={"optional": True})


@dataclass(kw_only=True)  # keyword-only: required fields may follow optional ones (JSON order)
class Summary:
    """A policy's post-freeze numbers on held-out tasks (the learner's, a reference's)."""

    num_tasks: int
    num_trials: int
    reward_curve: list[float] | None = optional()  # decision tasks
    loss_curve: list[float] | None = optional()  # prediction tasks
    improvement: float
    improvement_ci95: list[float]
    #: improvement / the ideal reference's on the same tasks (None: no ideal, or it is ~0)
    normalized_improvement: float | None
    regret: float
    regret_ci95: list[float]
    total_reward: float | None = optional()
    name: str | None = optional()  # an observer's class name (location observers)

    @property
    def curve(self) -> list[float]:
        """The per-trial curve: reward, or loss for prediction tasks."""
        return self.reward_curve if self.reward_curve is not None else (self.loss_curve or [])


@dataclass
class Train:
    """What training cost."""

    env_steps: int
    wall_s: float
    env_steps_per_s: float


@dataclass
class Frozen:
    """Weights digest before and after evaluation: evaluation changed nothing."""

    digest_before: str
    digest_after: str
    verified: bool


@dataclass
class OODEntry:
    """The learner and the ideal reference on one out-of-distribution prior."""

    num_tasks: int
    improvement: float
    improvement_ci95: list[float]
    regret: float
    ideal_improvement: float | None
    normalized_improvement: float | None
    kept: float | None  # OOD / in-distribution improvement of the learner
    ideal_kept: float | None  # the same for the ideal reference
    kept_vs_ideal: float | None  # kept / ideal_kept


@dataclass
class Location:
    """The location-learning index (0 = locates one of the pool's tasks, 1 = learns the task)."""

    index: float | None
    index_ci95: list[float] | None
    num_tasks: int
    num_trials: int
    informative_steps: float
    disagreement: float
    dist_train_prior: float
    dist_family_prior: float
    on_line: float | None
    index_by_trial: list[float | None]
    pool_size: int
    observers: dict[str, Summary]


@dataclass
class RunRecord:
    """Everything ``metrics.json`` holds about one finished run."""

    task: str
    arch: str
    training: str
    memory: bool
    distribution: str
    seed: int
    train: Train
    eval: Summary
    references: dict[str, Summary]
    frozen: Frozen
    # None without a training pool (related, trialwise); both absent from very old records
    location: Location | None = None
    ood: dict[str, OODEntry] = field(default_factory=dict)
    #: the code that ran, read when the run was built (a commit made during training does not
    #: change it): {"commit": sha or "unknown", "dirty": bool or None} (absent: older runs)
    code: dict[str, str | bool | None] | None = optional()
    #: when the run finished (training and evaluation), ISO 8601 UTC, e.g. "2026-12-03T07:10:00Z";
    #: kept when the run is evaluated again (absent: records written before it; mesalab-report
    #: then falls back to metrics.json's modification time)
    finished: str | None = optional()
    #: the run names of the population it trained in, in order, when its results depend on them
    #: (streams=shared, more than one member); absent for a solo run
    population: list[str] | None = optional()
    #: condition 1's history switch: false = the previous action and feedback were not inputs
    #: (None, absent: a record written before the switch; those runs all had them)
    history_inputs: bool | None = optional()
    #: the arch's RL recipe the run trained with (configs/training/rl.yaml: "default" when the
    #: arch has none); absent for other signals and for records written before recipes
    recipe: str | None = optional()
    #: what it trained on: ``cpu, torch 2.13.0+cpu``, ``cuda (NVIDIA H200), torch ...``
    #: (studies.device.describe_device; absent: records written before the field)
    device: str | None = optional()
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, ``version`` first."""
        out = to_dict(self)
        return {"version": out.pop("version"), **out}

    def write(self, path: Path) -> None:
        """Write ``metrics.json`` atomically (its presence marks a finished run)."""
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Parse a record; a missing ``version`` is 0 (written before records had one)."""
        return from_dict(cls, {"version": 0, **data})


def utc_stamp(timestamp: float) -> str:
    """A POSIX time as the record's ISO 8601 UTC stamp, to the second: ``2026-12-03T07:10:00Z``."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(stamp: str) -> float:
    """The POSIX time of a stamp written by :func:`utc_stamp`."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def read_record(path: Path) -> RunRecord | None:
    """The record in ``path`` (a run directory or its metrics.json); None if absent or invalid."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        return RunRecord.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def record_problem(path: Path) -> str | None:
    """Why ``path`` (a run directory or its metrics.json) holds no readable record, or None.

    The reason starts with ``missing``, ``unreadable`` (not JSON, or not this schema) or
    ``incomplete`` (required fields absent, named with their dotted paths).
    """
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.exists():
        return "missing: no metrics.json (the run has not finished, or never started)"
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        return f"unreadable: metrics.json: {err.strerror or err}"
    except ValueError as err:
        return f"unreadable: metrics.json is not valid JSON ({err})"
    if not isinstance(data, dict):
        return f"unreadable: metrics.json holds a {type(data).__name__}, not an object"
    lacks = missing_fields(RunRecord, data)
    if lacks:
        return f"incomplete: metrics.json lacks {', '.join(lacks)}"
    try:
        RunRecord.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        return f"unreadable: metrics.json does not fit the run record ({err})"
    return None


def missing_fields(cls: type, data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the required fields of dataclass ``cls`` that ``data`` lacks."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in data:
            out += [prefix + f.name] if required else []
        elif dataclasses.is_dataclass(hints[f.name]) and isinstance(data[f.name], dict):
            out += missing_fields(hints[f.name], data[f.name], f"{prefix}{f.name}.")
    return out


def to_dict(obj: Any) -> Any:
    """Dataclasses to plain JSON values, recursively, keys in field order."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("optional") and getattr(obj, f.name) is None)
        }
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _parse(tp: Any, value: Any) -> Any:
    """``value`` as the annotated type ``tp`` (dataclasses, dicts of them, optionals)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _parse(inner[0], value) if len(inner) == 1 else value
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {value!r}")
        return {k: _parse(vt, v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from its JSON object; unknown keys are an error (a typo)."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected an object, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise KeyError(f"{cls.__name__}: unknown keys {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**{k: _parse(hints[k], v) for k, v in data.items()})
