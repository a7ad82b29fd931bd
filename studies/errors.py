"""The errors a run reports to its user, and how the command line ends on each.

A bad config, a checkpoint that cannot be trusted or a refused resume is the user's to fix,
not a bug: the command prints one message (no traceback) and exits with status 2. A stop on
a signal exits with 128 + the signal number, the shell's convention (143 for SIGTERM). A run in
a worker of a process pool whose parent has ended stops as on SIGTERM, and its process exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: exit status of a run refused before training (bad config, checkpoint or resume)
USAGE_ERROR = 2


class ConfigError(ValueError):
    """A config value (or a checkpoint it points to) that the run refuses, named in full."""


class CheckpointError(ConfigError):
    """A checkpoint file that is unreadable, not a mesalab checkpoint, or not safe to load."""


class ResumeMismatch(ConfigError):
    """``resume=true`` on a checkpoint written with a config that changes results."""


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal (1 when a
        callback stopped training without a signal)."""
        return 128 + self.signum if self.signum else 1


def launcher_gone() -> bool:
    """True in a worker of a process pool (joblib's loky workers under ``hydra/launcher=joblib``)
    whose parent, the sweep that launched it, has ended: no one is left to give it work."""
    parent = multiprocessing.parent_process()
    return parent is not None and parent.pid is not None and os.getppid() != parent.pid


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; the number when the platform has no name for it."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextmanager
def clean_exit(config_errors: bool = True) -> Iterator[None]:
    """Turn the run's user-facing errors into a message on stderr and an exit status.

    A signal always ends the process (a sweep stops with the run). ``config_errors=False``
    (a job of a sweep) lets a refused config propagate, so the sweep records that run as
    failed, names it in its summary, and goes on with the others.
    """
    try:
        yield
    except Interrupted as err:
        print(str(err), file=sys.stderr, flush=True)
        if launcher_gone():  # a pool worker would wait for its dead parent forever
            logging.shutdown()
            os._exit(err.exit_status)
        raise SystemExit(err.exit_status) from None
    except ConfigError as err:
        if not config_errors:
            raise
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(USAGE_ERROR) from None
