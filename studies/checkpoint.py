"""Checkpoints written atomically, loaded safely, and the weight digest that proves a freeze.

A checkpoint holds tensors (weights, optimizer state, RNG states) and plain values only
(the resolved config, loop state, code version), so it loads with ``weights_only=True``: a
file that carries any other pickled object is refused before anything in it runs, which
matters because run directories are shared and analysed by other people.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from mesalab.studies.errors import CheckpointError

#: what every checkpoint written by ``mesalab-run`` holds
CHECKPOINT_KEYS = ("learner", "optimizer", "loop", "final", "rng", "config", "code_version")


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same directory, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; run outputs are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_orphans(path: Path) -> list[Path]:
    """Delete temporary files of ``path`` left by a writer that was killed; returns them.

    A run directory belongs to one run process, so any ``.<name>.*.tmp`` there when that
    process saves or resumes is left over from a killed save (up to the size of a checkpoint).
    """
    if not path.parent.is_dir():
        return []
    orphans = sorted(path.parent.glob(f"{_tmp_prefix(path)}*.tmp"))
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically save a checkpoint dictionary (tensors and plain values only)."""
    remove_orphans(path)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _reason(err: Exception) -> str:
    """torch's own reason in one line, without its advice to load with ``weights_only=False``."""
    lines = [ln.strip() for ln in str(err).splitlines()]
    why = [ln.split("error:", 1)[1].strip() for ln in lines if ln.startswith("WeightsUnpickler")]
    text = why[0] if why else (lines[0] if lines else "")
    return f"{type(err).__name__}: {text.split('. Please use', 1)[0]}"[:300]


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is unreadable (truncated or corrupt: {_reason(err)}); "
        "start the run afresh with force=true"
    )


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint`, tensors and plain values only.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated or corrupt,
    not a mesalab checkpoint, or carries pickled objects (which are never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the global it refused ("Unsupported global: GLOBAL os.system"); any other
        # failure of its unpickler (an unknown opcode in garbage bytes) is plain corruption
        if "Unsupported global" in str(err):
            raise CheckpointError(
                f"checkpoint {path} refused: it holds pickled Python objects, which mesalab "
                f"checkpoints never do, and unpickling them could run code from the file "
                f"({_reason(err)}). Nothing in it was executed."
            ) from None
        raise _unreadable(path, err) from None
    except Exception as err:  # torch raises RuntimeError, OSError, EOFError, KeyError, ...
        raise _unreadable(path, err) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is not a mesalab-run checkpoint: it lacks {', '.join(missing)}"
        )
    return ck
