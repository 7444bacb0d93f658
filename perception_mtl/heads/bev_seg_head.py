"""BEV map segmentation: one independent sigmoid per map class, trained with binary cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class BEVSegHead(BaseModule):
    """Per-class BEV map logits on the grid of the BEV feature.

    A 3x3 conv + ReLU and a 1x1 conv give one logit per class and cell. Classes
    are independent sigmoids, not a softmax, because map layers may overlap (in BEVFusion's six
    classes a crossing lies on the drivable area). The loss is the binary cross-entropy averaged over
    classes and cells, with foreground cells weighted by ``pos_weight`` (torch's ``pos_weight``).

    Reads ``gt_bev_seg`` (K, H, W) in {0, 1} from each data sample, on the feature's (H, W) grid;
    writes ``pred_bev_seg`` (K, H, W) probabilities.

    Args:
        in_channels: channels of the BEV feature.
        num_classes: K map classes.
        feat_channels: channels of the 3x3 conv; default ``in_channels // 2``.
        pos_weight: BCE weight of foreground cells (every class alike).
        loss_weight: factor on the loss.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        feat_channels: int | None = None,
        pos_weight: float = 1.0,
        loss_weight: float = 1.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1 or pos_weight <= 0:
            raise ValueError(f"BEVSegHead: need num_classes >= 1, pos_weight > 0; got {num_classes}, {pos_weight}")
        feat_channels = feat_channels or in_channels // 2
        self.num_classes = num_classes
        self.loss_weight = float(loss_weight)
        self.body = nn.Sequential(nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(feat_channels, num_classes, 1)
        self.register_buffer("pos_weight", torch.full((num_classes, 1, 1), float(pos_weight)), persistent=False)

    grid_hint = ""  # what to check when the target grid differs (subclasses that resample say how)

    def forward(self, feat: Tensor) -> Tensor:
        """Args: feat (B, C, H, W). Returns logits (B, K, H, W)."""
        return self.out(self.body(feat))

    def loss(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Returns ``loss_bce`` (key without the task prefix)."""
        return self.loss_by_feat(self(feat), data_samples)

    def loss_by_feat(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Args: logits (B, K, H, W); data_samples with ``gt_bev_seg``."""
        logits = logits.float()
        target = self.targets(logits, data_samples)
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)
        return {"loss_bce": loss * self.loss_weight}

    def targets(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> Tensor:
        """The samples' ``gt_bev_seg`` stacked to (B, K, H, W) like ``logits``; errors name what is wrong."""
        name = type(self).__name__
        try:
            target = torch.stack([torch.as_tensor(s.gt_bev_seg) for s in data_samples]).to(logits)
        except AttributeError as err:
            raise KeyError(f"{name}: data samples need a 'gt_bev_seg' field for the loss") from err
        if target.shape != logits.shape:
            raise ValueError(
                f"{name}: gt_bev_seg is {tuple(target.shape[1:])} per sample but the head predicts "
                f"{tuple(logits.shape[1:])} (num_classes, H, W){self.grid_hint}"
            )
        return target

    @torch.no_grad()
    def predict(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        """Writes ``pred_bev_seg`` (K, H, W) probabilities into each sample; returns the samples."""
        return self.predict_by_feat(self(feat), data_samples)

    @torch.no_grad()
    def predict_by_feat(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        for sample, prob in zip(data_samples, logits.float().sigmoid()):
            sample.pred_bev_seg = prob.cpu()
        return data_samples
