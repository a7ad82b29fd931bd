"""In-context learners behind one interface (see ``archs.base``)."""

from archs.base import Core, Learner, LearnerOutput, Memory, select_memory
from archs.budget import default_budget, matched_widths, width_for_budget
from archs.feedforward import FFNCore
from archs.recurrent import GRUCore, LSTMCore
from archs.slot_memory import SlotCore
from archs.transformer import TransformerCore

__all__ = [
    "Core",
    "FFNCore",
    "GRUCore",
    "LSTMCore",
    "Learner",
    "LearnerOutput",
    "Memory",
    "SlotCore",
    "TransformerCore",
    "default_budget",
    "matched_widths",
    "select_memory",
    "width_for_budget",
]
