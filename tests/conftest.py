"""Test-session settings: one intra-op thread (tiny tensors; threads only add synchronisation cost)."""

import torch

torch.set_num_threads(1)
