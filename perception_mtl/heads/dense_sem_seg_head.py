"""Semantic segmentation head for dense multi-task image models."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor

from perception_mtl.registry import MODELS

from .dense_prediction_head import DensePredictionHead


@MODELS.register_module()
class DenseSemSegHead(DensePredictionHead):
    """Per-pixel class logits, trained with cross-entropy.

    Reads ``gt_sem_seg`` (H, W) int64 class ids (``ignore_index`` skipped); writes ``pred_sem_seg``
    (H, W) int64 argmax classes.

    Args:
        in_channels: channels of each input level.
        num_classes: K classes.
        ignore_index: target value that carries no loss.
        **kwargs: ``channels``, ``num_convs``, ``loss_weight`` of ``DensePredictionHead``.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, ignore_index: int = 255, **kwargs) -> None:
        if num_classes < 2:
            raise ValueError(f"DenseSemSegHead: num_classes must be >= 2, got {num_classes}")
        super().__init__(in_channels, num_classes, **kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def loss_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """pred: (B, K, H, W) logits."""
        target = self._stack_targets(data_samples, "gt_sem_seg", pred).long()
        return {"loss_ce": F.cross_entropy(pred, target, ignore_index=self.ignore_index)}

    def predict_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        for sample, labels in zip(data_samples, pred.argmax(1)):
            sample.pred_sem_seg = labels.detach()
        return data_samples
