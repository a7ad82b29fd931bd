"""In-context learners behind one interface (see ``archs.base``)."""

from archs.base import Core, Learner, LearnerOutput, Memory, select_memory
from archs.recurrent import GRUCore, LSTMCore

__all__ = ["Core", "GRUCore", "LSTMCore", "Learner", "LearnerOutput", "Memory", "select_memory"]
