"""Test-session settings shared by every test package."""

import torch

from mesalab.studies.device import full_fp32

# The tests use small batches, where a second intra-op thread only adds contention (on a
# loaded 2-core machine it made some tests 5-10x slower).
torch.set_num_threads(1)


# float32 on CUDA as a run has it: cuDNN's RNNs default to TF32
full_fp32()

#: devices a test marked ``device`` runs on: the CPU, and CUDA when this machine has one
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
