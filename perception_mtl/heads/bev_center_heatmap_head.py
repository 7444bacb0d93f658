"""Object centres on a BEV grid as a CenterNet heatmap with sub-cell offsets (one object class)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.models.utils import gen_gaussian_target, get_local_maximum, get_topk_from_heatmap
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS

HEATMAP_PRIOR_BIAS = -2.19  # CenterNet's heatmap prior: sigmoid(-2.19) = 0.1


@MODELS.register_module()
class BEVCenterHeatmapHead(BaseModule):
    """Centre points of one object class on a BEV feature map (CenterNet, Zhou et al. 2019).

    A 3x3 conv + ReLU and a 1x1 conv give per cell a heatmap logit and the
    (x, y) offset of the object centre inside that cell. Targets are mmdet's Gaussians
    (``gen_gaussian_target``: peak 1 at the centre cell, sigma = (2 r + 1) / 6 cells, the maximum over
    objects). The heatmap loss runs on the sigmoid clamped to [1e-4, 1 - 1e-4] (as CenterPoint does),
    the offset loss only at centre cells; both are averaged over the number of centre cells. Inference
    keeps 3x3 local maxima (mmdet's ``get_local_maximum``), the top ``max_detections`` of them
    (``get_topk_from_heatmap``) and those scoring at least ``score_threshold``.

    Frame: the BEV grid is centred on the ego sensor, x along columns, y along rows, ``cell_m`` metres
    per cell; cell (row i, column j) covers x in [(j - W/2) cell_m, (j + 1 - W/2) cell_m), likewise y.

    Reads ``gt_centers`` (N, 2) metres (x, y) from each data sample; writes ``pred_centers`` (K, 2)
    metres and ``pred_scores`` (K,).

    Args:
        in_channels: channels of the BEV feature.
        feat_channels: channels of the 3x3 conv; default ``in_channels // 2``.
        cell_m: BEV cell size in metres.
        heatmap_radius: Gaussian radius of the heatmap target, in cells.
        max_detections: peaks kept per sample at inference.
        score_threshold: peaks below this score are dropped at inference.
        loss_heatmap: heatmap loss config, called as ``loss(prob, target, avg_factor=num_centres)``.
        loss_offset: offset loss config, called as ``loss(pred, target, weight, avg_factor=num_centres)``.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int,
        feat_channels: int | None = None,
        cell_m: float = 0.5,
        heatmap_radius: int = 4,
        max_detections: int = 20,
        score_threshold: float = 0.05,
        loss_heatmap: dict | None = None,
        loss_offset: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if cell_m <= 0 or heatmap_radius < 0 or max_detections < 1:
            raise ValueError(
                "BEVCenterHeatmapHead: need cell_m > 0, heatmap_radius >= 0, max_detections >= 1; got "
                f"cell_m={cell_m}, heatmap_radius={heatmap_radius}, max_detections={max_detections}"
            )
        feat_channels = feat_channels or in_channels // 2
        self.body = nn.Sequential(nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(feat_channels, 3, 1)
        nn.init.constant_(self.out.bias[:1], HEATMAP_PRIOR_BIAS)
        self.cell_m = float(cell_m)
        self.heatmap_radius = int(heatmap_radius)
        self.max_detections, self.score_threshold = max_detections, score_threshold
        self.loss_heatmap = MODELS.build(loss_heatmap or dict(type="mmdet.GaussianFocalLoss"))
        self.loss_offset = MODELS.build(loss_offset or dict(type="mmdet.L1Loss"))

    def forward(self, feat: Tensor) -> Tensor:
        """Args: feat (B, C, H, W). Returns (B, 3, H, W): heatmap logit, offset x, offset y (cells)."""
        return self.out(self.body(feat))

    def targets(self, centers: Sequence[Tensor], shape: tuple[int, int], device) -> tuple[Tensor, Tensor, Tensor]:
        """Training targets on an (H, W) grid.

        Args:
            centers: per sample, (N, 2) centres (x, y) in metres.
            shape: (H, W) of the grid.
            device: device of the returned tensors.

        Returns:
            heatmap (B, 1, H, W), offsets (B, 2, H, W) in cells, and the centre-cell mask (B, 1, H, W).
        """
        h, w = shape
        heat = torch.zeros(len(centers), 1, h, w, device=device)
        offset = torch.zeros(len(centers), 2, h, w, device=device)
        mask = torch.zeros(len(centers), 1, h, w, device=device)
        origin = torch.tensor([w / 2, h / 2])
        for b, sample_centers in enumerate(centers):
            cells = torch.as_tensor(sample_centers, dtype=torch.float32).reshape(-1, 2).cpu() / self.cell_m + origin
            for cx, cy in cells.tolist():
                ix, iy = int(min(max(cx, 0.0), w - 1)), int(min(max(cy, 0.0), h - 1))
                gen_gaussian_target(heat[b, 0], [ix, iy], self.heatmap_radius)
                offset[b, 0, iy, ix], offset[b, 1, iy, ix] = cx - ix, cy - iy
                mask[b, 0, iy, ix] = 1.0
        return heat, offset, mask

    def loss(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Returns ``loss_heatmap`` and ``loss_offset`` (keys without the task prefix)."""
        return self.loss_by_feat(self(feat), data_samples)

    def loss_by_feat(self, out: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Args: out (B, 3, H, W) raw head output; data_samples with ``gt_centers``."""
        out = out.float()
        try:
            centers = [s.gt_centers for s in data_samples]
        except AttributeError as err:
            raise KeyError("BEVCenterHeatmapHead: data samples need a 'gt_centers' field for the loss") from err
        heat, offset, mask = self.targets(centers, tuple(out.shape[-2:]), out.device)
        num_centres = mask.sum().clamp_min(1.0)
        prob = out[:, :1].sigmoid().clamp(1e-4, 1 - 1e-4)
        return {
            "loss_heatmap": self.loss_heatmap(prob, heat, avg_factor=num_centres),
            "loss_offset": self.loss_offset(out[:, 1:], offset, mask.expand_as(offset), avg_factor=num_centres),
        }

    @torch.no_grad()
    def predict(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        """Writes ``pred_centers`` (K, 2) metres and ``pred_scores`` (K,) into each sample; returns them."""
        return self.predict_by_feat(self(feat), data_samples)

    @torch.no_grad()
    def predict_by_feat(self, out: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        """Args: out (B, 3, H, W) raw head output. Returns the samples with the predictions."""
        out = out.float()
        h, w = out.shape[-2:]
        peaks = get_local_maximum(out[:, :1].sigmoid(), kernel=3)
        scores, _, _, ys, xs = get_topk_from_heatmap(peaks, k=min(self.max_detections, h * w))
        for b, sample in enumerate(data_samples):
            keep = scores[b] >= self.score_threshold
            iy, ix = ys[b][keep].long(), xs[b][keep].long()
            cx = ix.float() + out[b, 1, iy, ix]
            cy = iy.float() + out[b, 2, iy, ix]
            sample.pred_centers = (torch.stack([cx - w / 2, cy - h / 2], 1) * self.cell_m).cpu()
            sample.pred_scores = scores[b][keep].cpu()
        return data_samples
