"""The device a run trains on, and the float32 arithmetic it keeps there (torch only)."""

from __future__ import annotations

import ctypes
import os

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


_KEPT = False


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory an update frees for the next update (process-wide).

    By default glibc hands large freed blocks back to the OS (``munmap``, heap trimming), so every
    update faults the same pages in again: 3-10% of a population's training time on the CPU
    (``benchmarks/keep_freed.py``, 2026-12-04: slot and transformer, most early in a run;
    nothing for the LSTM). Every block then comes from the heap: mmap is off at any size (a
    threshold would not do: glibc's tops out at 32 MiB, and a block above it, such as the 34 MB
    activations of 27 ffns at 32 episodes, was mapped afresh and faulted in at every allocation;
    the ffn's update at P = 27 took 1.27x as long, 2026-12-05). Up to 1 GiB of free heap stays
    mapped. The peak memory is what it was at the study's population sizes; for 27 ffns it grew
    by a third (freed blocks kept rather than unmapped). Returns whether it applied (not on other
    C libraries).
    """
    global _KEPT
    if _KEPT or os.environ.get("MESALAB_KEEP_FREED", "1") == "0":
        return _KEPT
    try:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    except (OSError, TypeError):  # no C library to load this way (Windows)
        mallopt = None
    if mallopt is None:
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4  # malloc.h
    _KEPT = all(
        mallopt(option, value)
        for option, value in (
            (m_mmap_max, 0),  # no block mapped apart, however large
            (m_trim_threshold, 1 << 30),
            (m_top_pad, 64 << 20),
        )
    )
    return _KEPT
