"""Monocular depth head for dense multi-task image models."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mmengine.structures import BaseDataElement
from torch import Tensor

from perception_mtl.registry import MODELS

from .dense_prediction_head import DensePredictionHead


@MODELS.register_module()
class DenseDepthHead(DensePredictionHead):
    """Predicts log depth per pixel, trained with an L1 loss in log space.

    Reads ``gt_depth`` (H, W) metres, where values <= ``min_depth`` are invalid (e.g. sky) and carry
    no loss; writes ``pred_depth`` (H, W) metres, clamped to [min_depth, max_depth]. The raw output
    (``forward``) is log depth.

    Args:
        in_channels: channels of each input level.
        min_depth: smallest valid depth in metres.
        max_depth: largest predicted depth in metres.
        **kwargs: ``channels``, ``num_convs``, ``loss_weight`` of ``DensePredictionHead``.
    """

    def __init__(self, in_channels: Sequence[int], min_depth: float = 0.1, max_depth: float = 80.0, **kwargs) -> None:
        if not 0 < min_depth < max_depth:
            raise ValueError(f"DenseDepthHead: need 0 < min_depth < max_depth; got {min_depth}, {max_depth}")
        super().__init__(in_channels, 1, **kwargs)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def loss_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """pred: (B, 1, H, W) log depth."""
        depth = self._stack_targets(data_samples, "gt_depth", pred).float()
        valid = (depth > self.min_depth).to(pred.dtype)
        target = depth.clamp(min=self.min_depth).log()
        error = (pred[:, 0] - target).abs() * valid
        return {"loss_log_l1": error.sum() / valid.sum().clamp(min=1.0)}

    def predict_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        depth = pred[:, 0].clamp(math.log(self.min_depth), math.log(self.max_depth)).exp()
        for sample, d in zip(data_samples, depth):
            sample.pred_depth = d.detach()
        return data_samples
