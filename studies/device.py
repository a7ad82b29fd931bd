"""The device a run trains on, and the float32 arithmetic it keeps there (torch only)."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. On CUDA, float32 stays float32 (no TF32)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} is not allowed: no CUDA device is available here")
    device = torch.device(name)
    if device.type == "cuda":
        full_fp32()
    return device


def describe_device(device: torch.device) -> str:
    """What a run trained on, for its record: ``cpu, torch 2.13.0+cpu`` or
    ``cuda (NVIDIA H200), torch 2.11.0+cu130``. Results differ between devices (other kernels,
    and a CUDA generator draws other numbers than the CPU's), so a record says which."""
    name = device.type
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return f"{name}, torch {torch.__version__}"


def full_fp32() -> None:
    """Turn TF32 off in cuBLAS and cuDNN (process-wide).

    cuDNN's LSTM and GRU use TF32 by default on Ampere and later. The solo modules (``nn.LSTM``)
    then differ from the population cells (plain float32 matmuls) by about 1e-4 relative,
    measured on an H200; at these widths TF32 buys no speed.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
