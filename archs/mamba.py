"""Mamba core: a selective state-space model from ``transformers``, built from a config.

A linear layer embeds each step's input; ``MambaModel`` runs on ``inputs_embeds`` (pre-RMSNorm
residual blocks, each a causal depthwise convolution followed by a selective scan, and a final
RMSNorm). Without the ``mamba_ssm`` / ``causal_conv1d`` kernels, transformers falls back to its
pure-torch path, which runs on CPU; its four fallback warnings are replaced by one line of ours
(logged once per process, at INFO, by ``mesalab.archs.mamba``).

Memory is Mamba's cache as plain tensors with leading B, so that resets are a masked select:
per layer, ``conv`` (B, d_inner, conv_kernel), the last ``conv_kernel`` inputs of the
convolution, and ``ssm`` (B, d_inner, state_size), the state of the scan. The initial memory is
zeros, which is exactly the model's own start (the convolution's zero padding, a zero state).

Training runs whole sequences from the initial memory through ``MambaModel``, whose cache gives
the memory handed on. Acting (T = 1) takes a step path that runs Mamba's blocks and weights as
plain tensor operations on the memory (the same function as ``MambaModel`` stepping with its
cache, tested): the cache object updates its tensors in place, which would overwrite the
memory the caller keeps and break gradients through steps. A sequence (T > 1) that continues
a non-zero memory is run step by step too, because transformers' sequence path (like the
kernels it stands in for) always starts the scan from a zero state.

``memory=False`` restarts the convolution window and the state from zero before every step,
so the output at t is a function of the input at t alone; the memory passes through unchanged.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import DynamicCache, MambaConfig, MambaModel

from mesalab.archs.base import Core, Memory, check, check_positive

log = logging.getLogger(__name__)
_FALLBACK = "is falling back to its reference PyTorch implementation"


class _OneFallbackNotice(logging.Filter):
    """Drops transformers' per-function fallback warnings; says it once, here, instead."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if _FALLBACK not in record.getMessage():
            return True
        if not _OneFallbackNotice.said:
            _OneFallbackNotice.said = True
            log.info(
                "mamba: mamba_ssm/causal_conv1d not installed; transformers' pure-torch "
                "path is used (same function, slower)"
            )
        return False


def _silence_fallback_warnings() -> None:
    """Install the filter on transformers' kernel logger, once per process."""
    hub = logging.getLogger("transformers.integrations.hub_kernels")
    if not any(isinstance(f, _OneFallbackNotice) for f in hub.filters):
        hub.addFilter(_OneFallbackNotice())


class MambaCore(Core):
    """Mamba over the episode's steps; its conv and scan states are the memory."""

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
        self.config = MambaConfig(
            vocab_size=1,  # fed inputs_embeds: the token table is unused (and frozen below)
            hidden_size=d_model,
            num_hidden_layers=num_layers,
            state_size=state_size,
            expand=expand,
            conv_kernel=conv_kernel,
            hidden_act="silu",  # the step path below hard-codes it
            use_bias=False,
            use_conv_bias=True,
            use_mambapy=False,  # an optional package; its absence would change nothing but speed
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
            out = self.mamba(inputs_embeds=flat, use_cache=False).last_hidden_state
            return out.reshape(b, t, self.d_model), memory
        if t == 1:
            return self._step(emb, memory)
        if not any(bool(leaf.any()) for leaf in (*memory["conv"], *memory["ssm"])):
            return self._model_forward(emb)
        outs = []
        for i in range(t):
            out, memory = self._step(emb[:, i : i + 1], memory)
            outs.append(out)
        return torch.cat(outs, dim=1), memory

    def _model_forward(self, emb: Tensor) -> tuple[Tensor, Memory]:
        """``MambaModel`` on embedded steps (B, T, d_model) from the zero state, with its cache."""
        cache = DynamicCache(config=self.config)
        out = self.mamba(inputs_embeds=emb, cache=cache, use_cache=True)
        layers = out.cache.layers
        new_memory = {
            "conv": tuple(layer.conv_states[0] for layer in layers),
            "ssm": tuple(layer.recurrent_states[0] for layer in layers),
        }
        return out.last_hidden_state, new_memory

    def _step(self, emb: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """One step per row through Mamba's blocks, the cache as plain tensors.

        The same operations as ``MambaModel`` stepping with its cache: per block, RMSNorm, the
        input projection split into x and the gate z, the depthwise convolution over the last
        ``conv_kernel`` x's and SiLU, the input-dependent dt, B, C, one step of the
        discretised scan (state * exp(dt A) + dt B x), the readout C.state + D x gated by
        SiLU(z), the output projection and the residual; then the final RMSNorm.
        """
        h = emb[:, 0]  # (B, d_model)
        convs, ssms = [], []
        for i, block in enumerate(self.mamba.layers):
            mix = block.mixer
            u = F.rms_norm(h, (self.d_model,), block.norm.weight, block.norm.variance_epsilon)
            xs, z = F.linear(u, mix.in_proj.weight).chunk(2, dim=-1)  # (B, d_inner) each
            conv = torch.cat([memory["conv"][i][:, :, 1:], xs[:, :, None]], dim=-1)  # (B, di, K)
            xs = F.silu((conv * mix.conv1d.weight[:, 0]).sum(-1) + mix.conv1d.bias)
            dt, bmat, cmat = F.linear(xs, mix.x_proj.weight).split(
                [mix.time_step_rank, self.state_size, self.state_size], dim=-1
            )
            dt = F.softplus(F.linear(dt, mix.dt_proj.weight, mix.dt_proj.bias))  # (B, d_inner)
            decay = torch.exp(dt[:, :, None] * -torch.exp(mix.A_log))  # (B, d_inner, N)
            ssm = memory["ssm"][i] * decay + (dt * xs)[:, :, None] * bmat[:, None, :]
            y = (ssm @ cmat[:, :, None])[:, :, 0] + xs * mix.D  # (B, d_inner)
            h = h + F.linear(y * F.silu(z), mix.out_proj.weight)
            convs.append(conv)
            ssms.append(ssm)
        norm = self.mamba.norm_f
        out = F.rms_norm(h, (self.d_model,), norm.weight, norm.variance_epsilon)
        return out[:, None], {"conv": tuple(convs), "ssm": tuple(ssms)}
