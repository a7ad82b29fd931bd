"""Mamba core: a selective state-space model from ``transformers``, built from a config.

A linear layer embeds each step's input; Mamba's blocks (``MambaModel`` built from
``MambaConfig``: pre-RMSNorm residual blocks, each a causal depthwise convolution followed by a
selective scan, and a final RMSNorm) run on the embedded steps. The model, its config and its
initialisation are transformers'; the forward runs its blocks and weights as plain tensor
operations, the same function as ``MambaModel`` (tested: outputs, cache and gradients, whole
sequences and cached steps), for two reasons. transformers' pure-torch path (used without the
``mamba_ssm`` / ``causal_conv1d`` kernels) starts every sequence's scan from a zero state, like
the kernels it stands in for, so it cannot continue a memory over T > 1; and its backward is
O(T^2) (see ``_mix``): several times slower to train on a 100-trial episode
(benchmarks/archs_throughput.py, MambaModel peer). Its four
fallback warnings, should a ``MambaModel`` forward run, become one line of ours (logged once per
process, at INFO, by ``mesalab.archs.mamba``).

Memory is Mamba's cache as plain tensors with leading B, so that resets are a masked select:
per layer, ``conv`` (B, d_inner, conv_kernel), the last ``conv_kernel`` inputs of the
convolution, and ``ssm`` (B, d_inner, state_size), the state of the scan. The initial memory is
zeros, which is exactly the model's own start (the convolution's zero padding, a zero state).
One code path serves acting (T = 1) and training (whole sequences).

``memory=False`` restarts the convolution window and the state from zero before every step,
so the output at t is a function of the input at t alone; the memory passes through unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mesalab.archs.base import Core, Memory, check, check_positive

# Torch reshapes, not einops, with shapes in comments: these run at every acting step and
# update, where einops' per-call Python work is not free (the issue 19 report compares).

log = logging.getLogger(__name__)
_FALLBACK = "is falling back to its reference PyTorch implementation"


class _OneFallbackNotice(logging.Filter):
    """Drops transformers' per-kernel fallback warnings; says it once, here, instead."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if _FALLBACK not in record.getMessage():
            return True
        if not _OneFallbackNotice.said:
            _OneFallbackNotice.said = True
            log.info(
                "mamba: mamba_ssm/causal_conv1d not installed; MambaModel's own forward "
                "falls back to transformers' pure-torch path (MambaCore does not use it)"
            )
        return False


def _silence_fallback_warnings() -> None:
    """Install the filter on transformers' kernel logger, once per process."""
    hub = logging.getLogger("transformers.integrations.hub_kernels")
    if not any(isinstance(f, _OneFallbackNotice) for f in hub.filters):
        hub.addFilter(_OneFallbackNotice())


class MambaCore(Core):
    """Mamba over the episode's steps; its conv and scan states are the memory."""

    # the scan's decay multiplies a state that is zero at every step
    zero_grad_without_memory = ("mamba.layers.*.mixer.A_log",)

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """Two layers, a 16-wide scan state, expansion 2, a conv window of 4; d_model = width."""
        return {"num_layers": 2, "state_size": 16, "expand": 2, "conv_kernel": 4, "d_model": width}

    def __init__(
        self,
        input_dim: int,
        d_model: int = 32,
        num_layers: int = 2,
        state_size: int = 16,
        expand: int = 2,
        conv_kernel: int = 4,
        memory: bool = True,
    ) -> None:
        super().__init__()
        for field, value in [
            ("input_dim", input_dim),
            ("d_model", d_model),
            ("num_layers", num_layers),
            ("state_size", state_size),
            ("expand", expand),
            ("conv_kernel", conv_kernel),
        ]:
            check_positive(field, value)
        check(isinstance(memory, bool), "memory", memory, "a bool")
        _silence_fallback_warnings()
        # imported here, not with the module: importing transformers takes seconds
        from transformers import MambaConfig, MambaModel

        self.config = MambaConfig(
            vocab_size=1,  # fed inputs_embeds: the token table is unused (and frozen below)
            hidden_size=d_model,
            num_hidden_layers=num_layers,
            state_size=state_size,
            expand=expand,
            conv_kernel=conv_kernel,
            hidden_act="silu",  # _mix hard-codes it
            use_bias=False,  # no projection biases (Mamba's default), as _mix assumes
            use_conv_bias=True,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        self.embed = nn.Linear(input_dim, d_model)
        self.mamba = MambaModel(self.config)
        self.mamba.embeddings.weight.requires_grad_(False)
        self.d_model = self.out_dim = d_model
        self.d_inner = self.config.intermediate_size
        self.num_layers, self.state_size, self.conv_kernel = num_layers, state_size, conv_kernel
        self.memory = memory

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """Zero convolution windows and zero scan states, one of each per layer."""
        conv = torch.zeros(batch_size, self.d_inner, self.conv_kernel, device=device)
        ssm = torch.zeros(batch_size, self.d_inner, self.state_size, device=device)
        return {
            "conv": tuple(conv.clone() for _ in range(self.num_layers)),
            "ssm": tuple(ssm.clone() for _ in range(self.num_layers)),
        }

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, d_model), from the memory and causally within T."""
        b, t, _ = x.shape
        emb = self.embed(x)  # (B, T, d_model)
        if not self.memory:
            flat = emb.reshape(b * t, 1, self.d_model)  # (B*T, 1, d_model): sequences of one
            out, _ = self._blocks(flat, self.initial_memory(b * t, x.device))
            return out.reshape(b, t, self.d_model), memory
        return self._blocks(emb, memory)

    def _blocks(self, h: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """Mamba's residual blocks and final norm on (B, T, d_model), from the memory."""
        convs, ssms = [], []
        for i, block in enumerate(self.mamba.layers):
            u = F.rms_norm(h, (self.d_model,), block.norm.weight, block.norm.variance_epsilon)
            y, conv, ssm = self._mix(block.mixer, u, memory["conv"][i], memory["ssm"][i])
            h = h + y
            convs.append(conv)
            ssms.append(ssm)
        norm = self.mamba.norm_f
        out = F.rms_norm(h, (self.d_model,), norm.weight, norm.variance_epsilon)
        return out, {"conv": tuple(convs), "ssm": tuple(ssms)}

    def _mix(
        self, mix: nn.Module, u: Tensor, conv: Tensor, ssm: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One ``MambaMixer`` on (B, T, d_model) from its conv window and scan state.

        The operations of ``MambaMixer``: the input projection split into x and the gate z,
        the depthwise convolution over the window and SiLU, the input-dependent dt, B, C, the
        discretised scan (state * exp(dt A) + dt B x), the readout C.state + D x gated by
        SiLU(z), the output projection. Unlike transformers' pure-torch scan, it starts from
        the given state (so a sequence can continue a memory), and it unbinds the steps
        instead of indexing them, whose backward zero-fills the whole (B, d_inner, T, N)
        tensor at every step: O(T^2).
        """
        t = u.shape[1]
        xs, z = F.linear(u, mix.in_proj.weight).chunk(2, dim=-1)  # (B, T, d_inner) each
        window = torch.cat([conv, xs.transpose(1, 2)], dim=-1)  # (B, d_inner, K + T)
        xs = F.conv1d(window, mix.conv1d.weight, mix.conv1d.bias, groups=self.d_inner)
        xs = F.silu(xs[..., -t:].transpose(1, 2))  # (B, T, d_inner): the T newest outputs
        dt, bmat, cmat = F.linear(xs, mix.x_proj.weight).split(
            [mix.time_step_rank, self.state_size, self.state_size], dim=-1
        )
        dt = F.softplus(F.linear(dt, mix.dt_proj.weight, mix.dt_proj.bias))  # (B, T, d_inner)
        decay = torch.exp(dt[..., None] * -torch.exp(mix.A_log))  # (B, T, d_inner, N)
        drive = (dt * xs)[..., None] * bmat[:, :, None, :]  # (B, T, d_inner, N)
        states = []
        for a, d in zip(decay.unbind(1), drive.unbind(1), strict=True):
            ssm = ssm * a + d  # (B, d_inner, N)
            states.append(ssm)
        y = (torch.stack(states, dim=1) @ cmat[..., None])[..., 0] + xs * mix.D  # (B, T, di)
        y = F.linear(y * F.silu(z), mix.out_proj.weight)  # (B, T, d_model)
        return y, window[..., -self.conv_kernel :], ssm
