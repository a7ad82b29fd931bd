"""Every config value checked before anything is trained, each error named by its full path.

Hydra's schema (``studies.config.RunConfig``) types the top level at composition. What it
cannot see is checked here, in this order:

1. keys: ``+foo=1`` or ``+traning.updates=5`` add keys the schema does not have (Hydra's
   ``+`` bypasses it); every key must be a schema field or a parameter of its node's target;
2. ``_target_`` nodes (``task.family``, ``arch.core``, ``training.signal``,
   ``training.optimizer``): the target must import, and every value must fit the type
   annotation of the parameter it feeds (``training.optimizer.lr=abc`` is not a float);
3. values the schema types but cannot bound (``studies.config.validate``);
4. building: the family, core, signal and optimizer are built once on the CPU, so a bad size
   (``arch.core.hidden_size=0``) is reported under its config path, and the core's context
   is checked against the length of a task.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import importlib
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mesalab.archs.base import Core
from mesalab.studies.config import RECIPE_KEYS, RunConfig, memory_flag, validate
from mesalab.studies.errors import ConfigError
from mesalab.studies.load import build_core
from mesalab.tasks.distributions import TaskDistribution

#: the run's ``_target_`` nodes, each with the arguments the run passes itself (setting
#: them in the config is an error); ``training.optimizer`` may also be null
TARGETS: dict[str, tuple[str, ...]] = {
    "task.family": (),
    "arch.core": ("input_dim", "memory"),
    "training.signal": (),
    "training.optimizer": ("params",),
}
OPTIONAL_TARGETS = ("training.optimizer",)


def fail(path: str, value: object, allowed: str) -> typing.NoReturn:
    """Raise the one message format: the full path, the value given, what is allowed."""
    raise ConfigError(f"{path}={value!r} is not allowed: {path} must be {allowed}")


def _schema_fields(schema: type) -> dict[str, Any]:
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


def _unknown(path: str, key: str, value: object, allowed: list[str]) -> typing.NoReturn:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {path}{close[0]}?)" if close else ""
    where = f"{path[:-1]} has" if path else "the top level has"
    raise ConfigError(
        f"{path}{key}={value!r} is not allowed: {path}{key} is not a config key{hint}; "
        f"{where}: {', '.join(sorted(allowed))}"
    )


def check_keys(node: Mapping[str, Any], schema: type = RunConfig, path: str = "") -> None:
    """Every key of a schema-typed node is a field of its dataclass, recursively."""
    fields = _schema_fields(schema)
    for key, value in node.items():
        if key not in fields:
            _unknown(path, key, value, list(fields))
        sub = fields[key]
        if dataclasses.is_dataclass(sub) and isinstance(value, Mapping):
            check_keys(value, sub, f"{path}{key}.")


def check_recipe(tree: Mapping[str, Any]) -> None:
    """``arch.recipe``: null or a mapping of ``RECIPE_KEYS`` to values of their types."""
    recipe = tree.get("arch", {}).get("recipe")
    if recipe is None:
        return
    if not isinstance(recipe, Mapping):
        fail("arch.recipe", recipe, f"null or a mapping with keys among {list(RECIPE_KEYS)}")
    for key, value in recipe.items():
        if key not in RECIPE_KEYS:
            _unknown("arch.recipe.", key, value, list(RECIPE_KEYS))
        kind = RECIPE_KEYS[key]
        ok = isinstance(value, bool) if kind is bool else isinstance(value, kind)
        if kind is float:  # an int is a number too, a bool is not
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            fail(f"arch.recipe.{key}", value, f"a {kind.__name__}")


def resolved_container(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, interpolations resolved; a failing one is named."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        first = str(err).splitlines()[0]
        raise ConfigError(f"{key} cannot be resolved: {first}") from None


# --- values against type annotations ------------------------------------------------------


def conforms(value: object, hint: Any) -> bool | None:
    """Whether a plain config value fits a type annotation (None: the annotation is unknown)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        results = [conforms(value, h) for h in typing.get_args(hint)]
        return True if True in results else (None if None in results else False)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if origin is tuple and len(args) == len(typing.get_args(hint)):
            if len(value) != len(args):
                return False
            results = [conforms(v, a) for v, a in zip(value, args, strict=True)]
        else:
            results = [conforms(v, args[0]) for v in value] if args else []
        return False if False in results else (None if None in results else True)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (float, torch.Tensor):  # a number in a config becomes a float or a 0-d tensor
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return None


def describe(hint: Any) -> str:
    """A type annotation in words, for messages."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(h) for h in typing.get_args(hint)))
    if origin is typing.Literal:
        return f"one of {list(typing.get_args(hint))}"
    if origin in (tuple, list, collections.abc.Sequence):
        return f"a list ({', '.join(describe(a) for a in typing.get_args(hint) if a is not ...)})"
    names = {bool: "true or false", int: "an int", float: "a number", str: "a string"}
    names.update({torch.Tensor: "a number", type(None): "null"})
    return names.get(hint, getattr(hint, "__name__", repr(hint)))


def locate(dotted: str) -> Any:
    """The object a ``_target_`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def _hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # annotations that do not resolve here: check keys, not types
        return {}


def _signature(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """Parameters and resolved annotations of a class's ``__init__`` or a function.

    A class whose ``__init__`` takes ``**kwargs`` passes them on to its base class's (a subclass
    adding arguments to its parent's, as ``PPO`` to ``A2C``'s): its parameters are its own and
    its bases', up to the first ``__init__`` without ``**kwargs``.
    """
    if not inspect.isclass(target):
        return dict(inspect.signature(target).parameters), _hints(target)
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for cls in target.__mro__:
        if "__init__" not in vars(cls) or cls is object:
            continue
        own = inspect.signature(cls).parameters
        params.update({k: p for k, p in own.items() if k not in params})
        hints = {**_hints(cls.__init__), **hints}
        if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in own.values()):
            return {k: p for k, p in params.items() if p.kind is not p.VAR_KEYWORD}, hints
    if not params:  # no __init__ of its own anywhere: what Python says of the class
        return dict(inspect.signature(target).parameters), _hints(target.__init__)
    return params, hints  # every __init__ took **kwargs: any key


def matched_keys(target: Any) -> set[str]:
    """Keys a core's widths are matched by at instantiation (``Core.matched_kwargs``)."""
    if not (inspect.isclass(target) and issubclass(target, Core)):
        return set()
    try:
        return set(target.matched_kwargs(1))
    except NotImplementedError:
        return set()


def check_target(node: object, path: str) -> None:
    """A ``_target_`` node: the target imports, and each key is a parameter of fitting type."""
    if node is None and path in OPTIONAL_TARGETS:
        return
    if not isinstance(node, Mapping) or "_target_" not in node:
        fail(
            path, node, "a node with a _target_" + (" or null" if path in OPTIONAL_TARGETS else "")
        )
    target_name = node["_target_"]
    if not isinstance(target_name, str):
        fail(f"{path}._target_", target_name, "the import path of a class or function")
    try:
        target = locate(target_name)
    except (ImportError, AttributeError) as err:
        fail(f"{path}._target_", target_name, f"an importable class or function ({err})")
    if not isinstance(node.get("_partial_", False), bool):
        fail(f"{path}._partial_", node["_partial_"], "true or false")
    params, hints = _signature(target)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    supplied = TARGETS.get(path, ())
    allowed = [k for k, p in params.items() if k not in supplied and p.kind.name != "VAR_KEYWORD"]
    matched = matched_keys(target)
    for key, value in node.items():
        if key.startswith("_") and key.endswith("_"):  # Hydra's own keys
            continue
        if value is None and key in matched:  # null: the run matches it to the budget
            continue
        if key in supplied:
            fail(f"{path}.{key}", value, f"left out: the run passes {key} to {target_name} itself")
        if key not in params and not takes_any:
            _unknown(f"{path}.", key, value, allowed)
        if key in hints and conforms(value, hints[key]) is False:
            fail(f"{path}.{key}", value, f"{describe(hints[key])} ({target_name}: {key})")


# --- building ------------------------------------------------------------------------------


def _with_path(err: Exception, path: str, node: Mapping[str, Any]) -> ConfigError:
    """A construction error re-worded so that each config key it names carries its full path."""
    root = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
    msg = (str(root).splitlines() or [""])[0]
    if msg.startswith(path + "."):  # already named in full (the signals do)
        return ConfigError(msg)
    named = False
    for key in node:
        # `key=` or `key must`, not inside another name or after a dot
        pattern = rf"(?<![\w.]){re.escape(str(key))}(?==| must)"
        msg, count = re.subn(pattern, f"{path}.{key}", msg)
        named = named or count > 0
    if named:
        return ConfigError(msg)
    return ConfigError(f"{path}: building {node.get('_target_')} failed: {msg}")


def _build(path: str, node: Mapping[str, Any], make: Callable[[], Any]) -> Any:
    try:
        return make()
    except (ValueError, TypeError, InstantiationException) as err:
        raise _with_path(err, path, node) from None


def check_build(cfg: DictConfig) -> None:
    """Build the run's objects once on the CPU; check the core's context against a task."""
    family = _build("task.family", cfg.task.family, lambda: instantiate(cfg.task.family))
    c = cfg.condition
    _build(
        "condition",
        cfg.condition,
        lambda: TaskDistribution(family, c.distribution, c.pool_size, seed=cfg.seed),
    )
    core = _build(
        "arch.core",
        cfg.arch.core,
        lambda: build_core(cfg.arch, family.input_dim, family.num_actions, memory_flag(cfg)),
    )
    _build("training.signal", cfg.training.signal, lambda: instantiate(cfg.training.signal))
    if cfg.training.optimizer is not None:
        probe = [torch.nn.Parameter(torch.zeros(1))]
        opt = cfg.training.optimizer
        _build("training.optimizer", opt, lambda: instantiate(opt)(probe))
    # The learner's memory runs over a whole task (episodes within it are inputs, not resets).
    need = family.num_trials
    if core.max_context is not None and core.max_context < need:
        episodes = family.num_episodes
        of = f", {episodes} episodes" if episodes > 1 else ""
        fail(
            "arch.core.max_context",
            core.max_context,
            f">= {need}, the length of one task (task.family.num_trials={need}{of}), "
            "which the learner holds in its context from start to end",
        )


def check_config(cfg: DictConfig) -> None:
    """Everything a run checks before it builds or trains anything (raises ConfigError)."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(tree, dict)
    check_keys(tree)
    check_recipe(tree)  # before resolving: training=rl reads arch.recipe.*
    resolved = resolved_container(cfg)
    for path in TARGETS:
        group, key = path.split(".")
        check_target(resolved[group].get(key), path)
    validate(cfg)
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        fail("device", cfg.device, "auto or cpu on this machine (no CUDA device is available)")
    check_build(cfg)
