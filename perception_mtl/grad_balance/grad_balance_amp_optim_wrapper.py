"""Gradient balancing with automatic mixed precision (MMEngine's AmpOptimWrapper underneath)."""

from __future__ import annotations

import torch
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from perception_mtl.registry import OPTIM_WRAPPERS

from .grad_balance_optim_wrapper import GradBalanceOptimWrapper


@OPTIM_WRAPPERS.register_module()
class GradBalanceAmpOptimWrapper(GradBalanceOptimWrapper, AmpOptimWrapper):
    """``GradBalanceOptimWrapper`` on top of ``AmpOptimWrapper``.

    The forward runs under autocast (``AmpOptimWrapper.optim_context``). Per-task gradients are
    taken from loss-scaled losses (so fp16 head gradients do not underflow) and divided by the
    scale before the Gram matrix is formed; the final backward is scaled again, and
    ``AmpOptimWrapper.step`` unscales, clips, skips non-finite steps and updates the scale.

    MMEngine's ``AmpOptimWrapper`` refuses to build without a GPU/NPU/MLU/MUSA device. Torch
    also has CPU autocast (bfloat16) and a CPU ``GradScaler``, so on a CPU-only machine this
    wrapper uses those instead (same config keys; ``dtype`` defaults to bfloat16 there).

    Args:
        optimizer: the optimizer.
        balancer: the rule's config (see ``GradBalanceOptimWrapper``).
        **kwargs: ``GradBalanceOptimWrapper`` arguments and ``AmpOptimWrapper``'s ``loss_scale``
            ('dynamic', a float for a static scale, or GradScaler kwargs), ``dtype``,
            ``use_fsdp``, plus ``accumulative_counts`` and ``clip_grad``.
    """

    def _init_base(
        self,
        optimizer: torch.optim.Optimizer,
        loss_scale: str | float | dict = "dynamic",
        dtype: str | torch.dtype | None = None,
        use_fsdp: bool = False,
        **kwargs,
    ) -> None:
        if is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available():
            AmpOptimWrapper.__init__(
                self, optimizer=optimizer, loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs
            )
            return
        if use_fsdp:
            raise ValueError("GradBalanceAmpOptimWrapper: optim_wrapper.use_fsdp needs a GPU")
        OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
        self._scale_update_param = None
        if loss_scale == "dynamic":
            self.loss_scaler = torch.amp.GradScaler("cpu")
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler("cpu", **loss_scale)
        else:
            raise TypeError(f"optim_wrapper.loss_scale must be 'dynamic', a float or a dict, got {loss_scale!r}")
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if dtype not in (None, torch.bfloat16):
            raise ValueError(
                f"GradBalanceAmpOptimWrapper: CPU autocast supports only bfloat16, got optim_wrapper.dtype={dtype}"
            )
        self.cast_dtype = torch.bfloat16
