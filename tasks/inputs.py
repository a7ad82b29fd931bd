"""The one function that builds every learner's per-step input.

Layout of the last dimension, D = obs_dim + num_actions + feedback_dim + 2::

    [ observation | previous action (one-hot, or the prediction) | previous feedback
      | trial index / num_trials | episode-start flag ]

At the first trial of an episode the previous action and feedback are zeros and the flag is 1.
Episode boundaries inside a longer context are therefore inputs, never silent memory resets.
``input_columns`` says which columns a learner sees (condition 1 may drop the history parts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mesalab.tasks.base import TaskFamily


def build_inputs(
    family: TaskFamily,
    obs: Tensor,
    prev_action: Tensor | None,
    prev_feedback: Tensor | None,
    t: Tensor,
) -> Tensor:
    """Per-step learner input, (B, family.input_dim).

    ``prev_action`` is (B,) for decision tasks or (B, num_actions) for prediction tasks;
    ``prev_feedback`` is (B, feedback_dim); pass ``None`` for both at an episode's start.
    """
    b = obs.shape[0]
    if prev_action is None:
        act = obs.new_zeros(b, family.num_actions)
        fb = obs.new_zeros(b, family.feedback_dim)
    else:
        act = family.action_features(prev_action)  # (B, A)
        fb = prev_feedback.reshape(b, family.feedback_dim).float()  # (B, F)
    start = (t == 0).float()[:, None]  # (B, 1)
    trial = (t.float() / family.num_trials)[:, None]  # (B, 1)
    return torch.cat([obs.float(), act, fb, trial, start], dim=1)


def input_slices(family: TaskFamily) -> dict[str, slice]:
    """Where each part sits in the input vector (for probes and tests)."""
    o, a, f = family.obs_dim, family.num_actions, family.feedback_dim
    return {
        "obs": slice(0, o),
        "prev_action": slice(o, o + a),
        "prev_feedback": slice(o + a, o + a + f),
        "trial": slice(o + a + f, o + a + f + 1),
        "start": slice(o + a + f + 1, o + a + f + 2),
    }


#: the parts condition 1's ``history_inputs=false`` removes: what the last trial did and got
HISTORY_PARTS = ("prev_action", "prev_feedback")


def input_columns(family: TaskFamily, history_inputs: bool = True) -> list[int]:
    """Columns of the input a learner sees: all, or all but the previous action and feedback.

    With ``history_inputs=False`` the observation, trial index and start flag stay, so a
    learner without memory sees nothing of any earlier trial.
    """
    sl = input_slices(family)
    parts = () if history_inputs else HISTORY_PARTS
    dropped = {i for p in parts for i in range(sl[p].start, sl[p].stop)}
    return [i for i in range(family.input_dim) if i not in dropped]
