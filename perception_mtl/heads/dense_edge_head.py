"""Edge (boundary) detection head for dense multi-task image models."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor

from perception_mtl.registry import MODELS

from .dense_prediction_head import DensePredictionHead


@MODELS.register_module()
class DenseEdgeHead(DensePredictionHead):
    """Per-pixel edge logit, trained with HED's class-balanced binary cross-entropy.

    Edge pixels are rare, so positives are weighted by the batch's negative fraction and negatives
    by its positive fraction (Xie & Tu, 2015). Reads ``gt_edge`` (H, W) in {0, 1}; writes
    ``pred_edge`` (H, W) probabilities.

    Args:
        in_channels: channels of each input level.
        **kwargs: ``channels``, ``num_convs``, ``loss_weight`` of ``DensePredictionHead``.
    """

    def __init__(self, in_channels: Sequence[int], **kwargs) -> None:
        super().__init__(in_channels, 1, **kwargs)

    def loss_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """pred: (B, 1, H, W) logits."""
        target = self._stack_targets(data_samples, "gt_edge", pred).to(pred.dtype)
        pos_fraction = target.mean()
        weight = target * (1 - pos_fraction) + (1 - target) * pos_fraction
        # x2 keeps the loss on the scale of unweighted BCE when classes are balanced.
        return {"loss_bce": 2.0 * F.binary_cross_entropy_with_logits(pred[:, 0], target, weight=weight)}

    def predict_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        for sample, prob in zip(data_samples, pred[:, 0].sigmoid()):
            sample.pred_edge = prob.detach()
        return data_samples
