"""Slot memory: an external store of K key-value slots, read by attention from a feedforward net.

Mechanism (a ring buffer, as in the episodic stores of Ritter et al. 2018 and the key-value
memories that followed Santoro et al. 2016):

- a feedforward controller encodes the current input only: ``h_t = relu(W_c x_t)`` (``width``);
- every step writes one slot, the pair ``(key_t, value_t) = (W_k h_t, W_v h_t)`` (each
  ``slot_dim`` wide, default ``width``), into the
  oldest slot, so the memory always holds the K most recent steps. When an episode is longer
  than K, steps older than K are forgotten: nothing is summarised or kept on purpose. The
  slots carry no position; the trial index in the input lets the keys encode recency;
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

import torch
from torch import Tensor, nn

from archs.base import Core, Memory, check, check_positive


class SlotCore(Core):
    """K key-value slots written every step (oldest overwritten), read by attention."""

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
        """Empty slots: zero keys and values, none valid."""
        z = torch.zeros(batch_size, self.num_slots, self.slot_dim, device=device)
        valid = torch.zeros(batch_size, self.num_slots, dtype=torch.bool, device=device)
        return {"keys": z, "values": z.clone(), "valid": valid}

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, -1).transpose(1, 2)  # (B, heads, N, S/heads)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Multi-head read: q (B, T, S), k and v (B, N, S), mask (B, T, N) -> (B, T, S)."""
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, heads, T, N)
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        read = torch.softmax(scores, dim=-1) @ v  # (B, heads, T, S/heads)
        b, _, t, _ = read.shape
        return read.transpose(1, 2).reshape(b, t, self.slot_dim)  # (B, T, S)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, W); step t reads the last K writes, its own included."""
        b, t, _ = x.shape
        h = self.controller(x)  # (B, T, W)
        q, k_new, v_new = self.query(h), self.key(h), self.value(h)  # (B, T, S) each
        if not self.memory:
            # Each step is its own batch row with a single slot: the one it just wrote.
            flat = [z.reshape(b * t, 1, self.slot_dim) for z in (q, k_new, v_new)]  # (B*T, 1, S)
            ones = torch.ones(b * t, 1, 1, dtype=torch.bool, device=x.device)
            read = self._attend(*flat, ones).reshape(b, t, self.slot_dim)  # (B, T, S)
            return self.output(torch.cat([h, read], dim=-1)), memory
        kk = self.num_slots
        keys = torch.cat([memory["keys"], k_new], dim=1)  # (B, K+T, S), oldest first
        values = torch.cat([memory["values"], v_new], dim=1)  # (B, K+T, S)
        valid = torch.cat([memory["valid"], x.new_ones(b, t, dtype=torch.bool)], dim=1)
        # Entry i of the concatenation was written at step i - K; step s sees steps s-K+1..s.
        idx = torch.arange(kk + t, device=x.device)
        step = torch.arange(t, device=x.device)[:, None]
        window = (idx > step) & (idx <= step + kk)  # (T, K+T)
        read = self._attend(q, keys, values, window[None] & valid[:, None, :])
        new_memory = {"keys": keys[:, -kk:], "values": values[:, -kk:], "valid": valid[:, -kk:]}
        return self.output(torch.cat([h, read], dim=-1)), new_memory
