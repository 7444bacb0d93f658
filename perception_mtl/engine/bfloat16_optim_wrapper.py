"""Mixed-precision training in bfloat16 on any device, the CPU included."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from perception_mtl.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BFloat16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose training forward runs under ``torch.autocast(dtype=torch.bfloat16)`` on
    the device of the model's parameters.

    MMEngine's ``AmpOptimWrapper`` refuses to build without a GPU; CPUs with bfloat16 units (AVX512-BF16,
    AMX) run oneDNN's bfloat16 convolutions: a UGCL demo training step takes 0.66x the float32 time on
    the 2-core machine (``tools/benchmark.py channels_last``, both channels-last). bfloat16 has
    float32's exponent range, so no loss scaling is needed. Weights, gradients and optimizer state stay
    float32; validation and test run outside this context, in float32. Ops autocast leaves in bfloat16
    that need float32 (``torch.linalg.det`` has no bfloat16 kernel) must run under
    ``torch.autocast(..., enabled=False)`` in the model.

    Args:
        optimizer: the optimizer.
        enabled: False turns the wrapper into a plain ``OptimWrapper`` (a switch for ablations).
        **kwargs: ``OptimWrapper`` arguments (``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, enabled: bool = True, **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self.enabled = bool(enabled)

    @contextmanager
    def optim_context(self, model: nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device, dtype=torch.bfloat16, enabled=self.enabled):
            yield
