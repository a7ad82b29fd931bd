"""Slot memory: an external store of K key-value slots, read by attention from a feedforward net.

Mechanism (a ring buffer, as in the episodic stores of Ritter et al. 2018 and the key-value
memories that followed Santoro et al. 2016):

- a feedforward controller encodes the current input only: ``h_t = relu(W_c x_t)`` (``width``);
- every step writes one slot, the pair ``(key_t, value_t) = (W_k h_t, W_v h_t)`` (each
  ``slot_dim`` wide, default ``width``): the store grows by one slot per step until it holds K,
  then the newest write replaces the oldest, so the memory always holds the K most recent
  steps. When an episode is longer than K, steps older than K are forgotten: nothing is
  summarised or kept on purpose. The slots carry no position; the trial index in the input
  lets the keys encode recency. (Starting empty rather than with K invalid slots makes an
  acting step early in an episode copy and read only the steps so far: 1.6x faster rollouts
  than a fixed K = 128 store on the 100-trial bandits, with the same outputs up to float
  rounding);
- the controller reads with multi-head attention, query ``W_q h_t`` over the valid slots,
  including the one just written (so a read never has an empty memory);
- the features are ``relu(W_o [h_t, read_t])``.

No state passes from step to step except the slots, and a write depends on the current input
only, so a whole sequence is one banded causal attention (each step sees the last K writes),
computed without a Python loop over T.

``memory=False`` clears the slots before every step: the read sees only the slot just written
(its attention weight is then 1, so the query and key weights get no gradient).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mesalab.archs.base import Core, Memory, check, check_positive
from mesalab.archs.cache import append, tail


class SlotCore(Core):
    """K key-value slots written every step (oldest overwritten), read by attention."""

    # a read of the single slot just written has attention weight 1 whatever query and key
    zero_grad_without_memory = ("query.*", "key.*")

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """The controller width; slots rounded up to the heads, so it moves in steps of one."""
        return {
            "num_slots": 32,
            "num_heads": 2,
            "width": width,
            "slot_dim": 2 * math.ceil(width / 2),
        }

    def __init__(
        self,
        input_dim: int,
        num_slots: int = 32,
        width: int = 64,
        num_heads: int = 2,
        slot_dim: int | None = None,
        memory: bool = True,
    ) -> None:
        super().__init__()
        check_positive("input_dim", input_dim)
        check_positive("num_slots", num_slots)
        check_positive("width", width)
        check_positive("num_heads", num_heads)
        slot_dim = width if slot_dim is None else slot_dim
        check_positive("slot_dim", slot_dim)
        check(
            slot_dim % num_heads == 0, "num_heads", num_heads, f"a divisor of slot_dim={slot_dim}"
        )
        check(isinstance(memory, bool), "memory", memory, "a bool")
        self.num_slots, self.width, self.num_heads, self.slot_dim = (
            num_slots,
            width,
            num_heads,
            slot_dim,
        )
        self.out_dim = width
        self.memory = memory
        self.controller = nn.Sequential(nn.Linear(input_dim, width), nn.ReLU())
        self.query = nn.Linear(width, slot_dim)
        self.key = nn.Linear(width, slot_dim)
        self.value = nn.Linear(width, slot_dim)
        self.output = nn.Sequential(nn.Linear(width + slot_dim, width), nn.ReLU())

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """No slots written yet: keys and values (split by head) of length 0.

        The store grows by one slot per step up to ``num_slots`` and then slides, so acting
        early in an episode copies and attends over the steps so far only.
        """
        hd = self.slot_dim // self.num_heads
        z = torch.zeros(batch_size, self.num_heads, 0, hd, device=device)
        valid = torch.zeros(batch_size, 0, dtype=torch.bool, device=device)
        return {"keys": z, "values": z.clone(), "valid": valid}

    def reset_memory(self, memory: Memory, mask: Tensor) -> Memory:
        """Masked rows forget every slot; slots no row may read any more are dropped."""
        if not self.memory:
            return memory
        valid = memory["valid"] & ~mask[:, None]
        alive = valid.any(dim=0)  # (L,)
        first = int(alive.int().argmax()) if bool(alive.any()) else valid.shape[1]
        return {
            "keys": memory["keys"][:, :, first:],
            "values": memory["values"][:, :, first:],
            "valid": valid[:, first:],
        }

    def _heads(self, x: Tensor) -> Tensor:
        return rearrange(x, "b t (h s) -> b h t s", h=self.num_heads)  # (B, heads, T, S/heads)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, W); step t reads the last K writes, its own included."""
        b, t, _ = x.shape
        h = self.controller(x)  # (B, T, W)
        q, k_new, v_new = (self._heads(f(h)) for f in (self.query, self.key, self.value))
        read, new_memory = self.read(q, k_new, v_new, memory)
        read = rearrange(read, "b h t s -> b t (h s)")  # (B, T, S)
        return self.output(torch.cat([h, read], dim=-1)), new_memory

    def read(
        self, q: Tensor, k_new: Tensor, v_new: Tensor, memory: Memory
    ) -> tuple[Tensor, Memory]:
        """Write the new slots and read: q, k, v (B, heads, T, S/heads) -> read (same), memory.

        Separate from ``forward`` so that a population (``archs.population_attention``) reads
        through the same code with its members folded into B.
        """
        b, _, t, _ = q.shape
        if not self.memory:
            # Each step reads a memory of one slot: the one it just wrote.
            one = [z.unsqueeze(-2) for z in (q, k_new, v_new)]  # (B, heads, T, 1, S/heads)
            return F.scaled_dot_product_attention(*one).squeeze(-2), memory
        kk = self.num_slots
        held = memory["keys"].shape[2]  # slots written before this call, at most K
        # Grown in place into a buffer of 4K slots (archs.cache): the window slides along it
        # and is copied to a fresh buffer once every 3K steps, not once per step.
        keys = append(memory["keys"], k_new, 2, 4 * kk)  # (B, heads, L+T, S/heads)
        values = append(memory["values"], v_new, 2, 4 * kk)  # oldest first
        valid = append(memory["valid"], q.new_ones(b, t, dtype=torch.bool), 1, 4 * kk)
        # No mask where none is needed, as in the transformer: a mask costs 10-15% of the
        # attention here, and leaving out an all-true one (or the causal one, for is_causal)
        # gives the same bits, forward and backward (tested).
        causal = False
        if t == 1:  # acting: read the last K slots, the one just written included
            keys, values, valid = tail(keys, kk, 2), tail(values, kk, 2), tail(valid, kk, 1)
            # every slot valid, as in every training rollout: no mask
            mask = None if bool(valid.all()) else valid[:, None, None, :]  # (B, 1, 1, <=K)
        elif held == 0 and t <= kk:  # a fresh sequence within the window: plainly causal
            mask, causal = None, True
        else:
            # Entry i of the concatenation was written at step i - L; step s sees
            # steps s-K+1..s, i.e. entries s+L-K+1..s+L.
            idx = torch.arange(held + t, device=q.device)
            step = torch.arange(t, device=q.device)[:, None] + held
            window = (idx > step - kk) & (idx <= step)  # (T, L+T)
            mask = (window[None] & valid[:, None, :])[:, None]  # (B, 1, T, L+T)
        read = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal)
        new_memory = {
            "keys": tail(keys, kk, 2),
            "values": tail(values, kk, 2),
            "valid": tail(valid, kk, 1),
        }
        return read, new_memory
