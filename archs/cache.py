"""Growing caches (key-value caches, slot stores) appended in place instead of concatenated.

An acting step used to grow its cache with ``torch.cat``: a copy of the whole cache per step,
so an episode of T steps copies O(T^2) entries, and at a few hundred rows that copying cost as
much as the attention itself. ``append`` writes the new entries into spare room after the
cache instead: the cache is a view of a larger buffer, and the returned view is one longer.

The memory interface stays functional. A view remembers (in a Python attribute) how far its
buffer has been written; a view may write in place only if nothing was written after its end,
so a memory used twice (two branches from one memory) sees its second use copy into a fresh
buffer (copy on write) and neither branch changes the other's entries. With gradients on
(training through the cache), the append is a plain concatenation: autograd needs every
tensor it saved unchanged. The values are those of the concatenation, bit for bit, and the
attention kernels read a view as they read a contiguous tensor (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

_TAG = "_mesalab_cache"  # attribute on a cache view: (buffer fill, end of this view)


class _Fill:
    """How far along the cache dim a buffer has been written, and its capacity."""

    __slots__ = ("end", "capacity")

    def __init__(self, end: int, capacity: int) -> None:
        self.end, self.capacity = end, capacity


def append(cache: Tensor, new: Tensor, dim: int, capacity: int) -> Tensor:
    """``torch.cat([cache, new], dim)``, written in place when the cache's buffer has room.

    ``capacity``: the buffer length (along ``dim``) to allocate when a new buffer is needed;
    a cache that outgrows it gets twice its length (so copies stay rare).
    """
    if torch.is_grad_enabled() and (cache.requires_grad or new.requires_grad):
        return torch.cat([cache, new], dim=dim)
    n, t = cache.shape[dim], new.shape[dim]
    tag = getattr(cache, _TAG, None)
    if tag is not None and tag[0].end == tag[1] and tag[1] + t <= tag[0].capacity:
        fill, end = tag
        size = list(cache.shape)
        size[dim] = n + t
        out = cache.as_strided(size, cache.stride(), cache.storage_offset())
    else:
        size = list(cache.shape)
        size[dim] = max(capacity, 2 * (n + t))
        buf = cache.new_empty(size)
        out = buf.narrow(dim, 0, n + t)
        out.narrow(dim, 0, n).copy_(cache)
        fill, end = _Fill(n, size[dim]), n
    out.narrow(dim, n, t).copy_(new)
    fill.end = end + t
    setattr(out, _TAG, (fill, fill.end))
    return out


def keep(view: Tensor, source: Tensor) -> Tensor:
    """Mark ``view`` appendable as ``source``: a reshape of it, or a slice that keeps its end."""
    tag = getattr(source, _TAG, None)
    # a reshape that had to copy is a tensor of its own, with no room after it
    if tag is not None and view.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
        setattr(view, _TAG, tag)
    return view


def tail(cache: Tensor, n: int, dim: int) -> Tensor:
    """The last ``n`` entries along ``dim`` (all if fewer), still appendable in place."""
    length = cache.shape[dim]
    if length <= n:
        return cache
    return keep(cache.narrow(dim, length - n, n), cache)
