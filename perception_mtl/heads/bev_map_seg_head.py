"""BEVFusion's map segmentation head: the shared BEV feature resampled onto the map grid, a conv tower,
one independent sigmoid per map class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS

from .bev_seg_head import BEVSegHead

MAP_CLASSES = ("drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area", "divider")


def map_grid(bev_range: Sequence[float], xbound: Sequence[float], ybound: Sequence[float]) -> Tensor:
    """Sampling grid (1, H, W, 2) for ``F.grid_sample`` from a BEV feature onto the map grid.

    The feature is (B, C, Y, X) over ``bev_range`` = (x_min, y_min, _, x_max, y_max, _), rows along y and
    columns along x (the decoder's layout). The map grid follows ``LoadBEVMapSegmentation`` (BEVFusion's
    convention): cell (i, j) has its centre at x = xbound[0] + (i + 0.5) xbound[2] along the rows and
    y = ybound[0] + (j + 0.5) ybound[2] along the columns. Both grids are in the augmented LiDAR frame,
    so the grid is fixed. Normalised for ``align_corners=False``: -1 and 1 are the outer cell edges.
    """
    x_min, y_min, x_max, y_max = bev_range[0], bev_range[1], bev_range[3], bev_range[4]
    nx = int(round((xbound[1] - xbound[0]) / xbound[2]))
    ny = int(round((ybound[1] - ybound[0]) / ybound[2]))
    x = xbound[0] + (torch.arange(nx, dtype=torch.float64) + 0.5) * xbound[2]
    y = ybound[0] + (torch.arange(ny, dtype=torch.float64) + 0.5) * ybound[2]
    gx = (x - x_min) / (x_max - x_min) * 2 - 1  # feature column coordinate, per map row i
    gy = (y - y_min) / (y_max - y_min) * 2 - 1  # feature row coordinate, per map column j
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="ij"), dim=-1)  # (H=nx, W=ny, 2): (col, row)
    return grid[None].float()


@MODELS.register_module()
class BEVMapSegHead(BEVSegHead):
    """Map segmentation on its own grid (BEVFusion's ``BEVSegmentationHead``; M3Net copies it).

    The shared feature (B, C, Y, X) is bilinearly resampled onto the map grid (``xbound`` x ``ybound``,
    default 200 x 200 cells of 0.5 m over [-50, 50] m, row i = x index as ``LoadBEVMapSegmentation``
    writes ``gt_bev_seg``) with one 4D ``grid_sample`` over a fixed grid (exportable), then
    ``num_convs`` 3x3 conv-BN-ReLU and a 1x1 conv to one logit per class. Classes are independent
    sigmoids (a crossing lies on the drivable area), trained with sigmoid focal loss (mmdet's
    ``FocalLoss``, BEVFusion's choice) or binary cross-entropy (``loss='bce'``, :class:`BEVSegHead`'s).

    Reads ``gt_bev_seg`` (K, H, W) in {0, 1}; writes ``pred_bev_seg`` (K, H, W) probabilities, scored by
    ``BEVSegIoUMetric`` (IoU at thresholds 0.35..0.65, max over thresholds, mean over classes).

    Args:
        in_channels: channels of the shared feature.
        bev_range: extent of the shared feature, (x_min, y_min, z_min, x_max, y_max, z_max) in metres.
        xbound, ybound: (min, max, cell) of the map grid in metres.
        num_classes: K map classes (BEVFusion's six by default).
        feat_channels: channels of the conv tower.
        num_convs: 3x3 conv-BN-ReLU layers after the resampling.
        loss: ``'focal'`` (``focal_gamma``, ``focal_alpha``) or ``'bce'`` (``pos_weight``).
        loss_weight: factor on the loss.
    """

    def __init__(
        self,
        in_channels: int,
        bev_range: Sequence[float],
        xbound: Sequence[float] = (-50.0, 50.0, 0.5),
        ybound: Sequence[float] = (-50.0, 50.0, 0.5),
        num_classes: int = len(MAP_CLASSES),
        feat_channels: int = 64,
        num_convs: int = 2,
        loss: str = "focal",
        focal_gamma: float = 2.0,
        focal_alpha: float = 0.25,
        pos_weight: float = 1.0,
        loss_weight: float = 1.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, feat_channels, pos_weight, loss_weight, init_cfg)
        if loss not in ("focal", "bce"):
            raise ValueError(f"BEVMapSegHead: loss must be 'focal' or 'bce', got {loss!r}")
        if num_convs < 1:
            raise ValueError(f"BEVMapSegHead: num_convs must be >= 1, got {num_convs}")
        self.loss_type = loss
        convs = [ConvModule(in_channels, feat_channels, 3, padding=1, norm_cfg=dict(type="BN"))]
        convs += [
            ConvModule(feat_channels, feat_channels, 3, padding=1, norm_cfg=dict(type="BN"))
            for _ in range(num_convs - 1)
        ]
        self.body = nn.Sequential(*convs)
        if loss == "focal":
            from mmdet.models.losses import FocalLoss

            self.focal = FocalLoss(use_sigmoid=True, gamma=focal_gamma, alpha=focal_alpha, loss_weight=1.0)
        self.register_buffer("grid", map_grid(bev_range, xbound, ybound), persistent=False)

    grid_hint = "; match xbound / ybound to LoadBEVMapSegmentation"

    def forward(self, feat: Tensor) -> Tensor:
        """Args: feat (B, C, Y, X). Returns logits (B, K, H, W) on the map grid (row i = x index)."""
        grid = self.grid.to(feat.dtype).expand(feat.shape[0], -1, -1, -1)
        return self.out(self.body(F.grid_sample(feat, grid, mode="bilinear", align_corners=False)))

    def loss_by_feat(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """``loss_focal`` or ``loss_bce`` over every class and cell."""
        if self.loss_type == "bce":
            return super().loss_by_feat(logits, data_samples)
        logits = logits.float()
        target = self.targets(logits, data_samples)
        k = logits.shape[1]
        flat_pred = logits.permute(0, 2, 3, 1).reshape(-1, k)
        flat_target = target.permute(0, 2, 3, 1).reshape(-1, k)
        # One-hot (N, K) targets: mmdet's sigmoid focal loss, averaged over every class and cell.
        return {"loss_focal": self.focal(flat_pred, flat_target) * self.loss_weight}
