"""In-context learners behind one interface (see ``mesalab.archs.base``)."""

from mesalab.archs.base import Core, Learner, LearnerOutput, Memory, select_memory
from mesalab.archs.budget import default_budget, matched_widths, width_for_budget
from mesalab.archs.feedforward import FFNCore
from mesalab.archs.mamba import MambaCore
from mesalab.archs.recurrent import GRUCore, LSTMCore
from mesalab.archs.slot_memory import SlotCore
from mesalab.archs.transformer import TransformerCore

__all__ = [
    "Core",
    "FFNCore",
    "GRUCore",
    "LSTMCore",
    "Learner",
    "LearnerOutput",
    "MambaCore",
    "Memory",
    "SlotCore",
    "TransformerCore",
    "default_budget",
    "matched_widths",
    "select_memory",
    "width_for_budget",
]
