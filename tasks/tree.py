"""Utilities over trees of tensors: dataclasses (latents, states), tuples, dicts (memories).

The one copy of them, used by tasks (latents and states with a leading batch dimension B) and
archs (memories); and ``check``, the one way a bad value is reported: naming the field, the
value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def check(condition: bool, field: str, value: object, allowed: str) -> None:
    """Raise ``ValueError`` naming the field, the value given and what is allowed."""
    if not condition:
        raise ValueError(f"{field}={value!r} is not allowed: {field} must be {allowed}")


def tree_map(fn: Callable[..., Tensor], tree: T, *rest: T) -> T:
    """Apply ``fn`` leaf-wise to every tensor of one or more trees of the same structure.

    A tree is a tensor, a dataclass, a tuple or a dict of trees; any other leaf (None, an int
    field) is kept from the first tree.
    """
    trees = (tree, *rest)
    if isinstance(tree, Tensor):
        return fn(*trees)  # type: ignore[return-value]
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {
            f.name: tree_map(fn, *(getattr(t, f.name) for t in trees))
            for f in dataclasses.fields(tree)
        }
        return dataclasses.replace(tree, **changes)  # type: ignore[type-var]
    if isinstance(tree, tuple):
        return tuple(tree_map(fn, *parts) for parts in zip(*trees, strict=True))  # type: ignore[return-value]
    if isinstance(tree, dict):
        return {k: tree_map(fn, *(t[k] for t in trees)) for k in tree}  # type: ignore[return-value]
    return tree


def batch_select(mask: Tensor, new: T, old: T) -> T:
    """Row-wise ``where(mask, new, old)`` over two trees with leading B (PureJaxRL's reset)."""

    def pick(a: Tensor, b: Tensor) -> Tensor:
        # reshape: as many trailing unit axes as the leaf has, a count einops cannot name
        return torch.where(mask.reshape(mask.shape + (1,) * (a.dim() - 1)), a, b)

    return tree_map(pick, new, old)


def index_batch(obj: T, idx: Tensor | slice) -> T:
    """Select rows of the leading batch dimension of every tensor field."""
    return tree_map(lambda x: x[idx], obj)


def concat_batch(objs: list[T]) -> T:
    """Concatenate dataclasses of tensors along the leading batch dimension."""
    first = objs[0]
    if isinstance(first, Tensor):
        return torch.cat(objs)  # type: ignore[arg-type,return-value]
    changes = {}
    for f in dataclasses.fields(first):  # type: ignore[arg-type]
        value = getattr(first, f.name)
        if isinstance(value, Tensor) or dataclasses.is_dataclass(value):
            changes[f.name] = concat_batch([getattr(o, f.name) for o in objs])
    return dataclasses.replace(first, **changes)  # type: ignore[type-var]


def batch_size_of(obj: object) -> int:
    """Leading dimension of the first tensor field."""
    if isinstance(obj, Tensor):
        return obj.shape[0]
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, Tensor) or dataclasses.is_dataclass(value):
            return batch_size_of(value)
    raise ValueError("object holds no tensor")
