"""Occ3D occupancy from the shared BEV feature by channel-to-height lifting (FlashOcc's idea: 2D ops only).

Frames. The shared feature is (B, C, Y, X) in the augmented LiDAR frame over ``bev_range``. The Occ3D
labels (``LoadOccupancy``) are in the ego frame, and under a BEV augmentation ``A`` (``lidar_aug``) they
are resampled with ``lidar2ego @ A @ inv(lidar2ego)``. A point that sits at ``p`` in the LiDAR frame is
therefore at ``A p`` in the augmented LiDAR frame and at ``lidar2ego @ A @ p`` in the augmented ego
frame, so the augmented ego and augmented LiDAR frames are still related by ``lidar2ego`` alone: the
head needs each sample's ``lidar2ego`` and never the augmentation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS

OCC3D_RANGE = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
OCC3D_GRID = (200, 200, 16)
FREE_LABEL = 17

# Nominal nuScenes LIDAR_TOP mount (ego frame: x forward, y left, z up): the LiDAR's x axis points to the
# ego's right (a -90 degree yaw), 0.943 m ahead of the rear axle and 1.84 m up.
NUSCENES_LIDAR2EGO = (
    (0.0, 1.0, 0.0, 0.943),
    (-1.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 1.840),
    (0.0, 0.0, 0.0, 1.0),
)

MASK_KEYS = {"camera": "mask_camera", "lidar": "mask_lidar", None: None}


def log_frequency_class_weights(counts: Sequence[float]) -> list[float]:
    """Class weights ``1 / ln(e + n_c)`` from voxel counts ``n_c`` (FlashOcc's ``1 / log(freq)`` balance,
    shifted by e so that a class with no voxels gets weight 1 instead of a division by zero)."""
    n = np.asarray(counts, dtype=np.float64)
    if (n < 0).any():
        raise ValueError(f"class frequencies must be non-negative counts, got {counts}")
    return (1.0 / np.log(np.e + n)).tolist()


def lovasz_softmax(probs: Tensor, labels: Tensor) -> Tensor:
    """Lovasz-softmax loss (Berman et al., CVPR 2018) over the classes present in ``labels``.

    The Lovasz extension of the Jaccard loss ``1 - IoU_c``, averaged over present classes; on one-hot
    ``probs`` it equals ``mean_c (1 - IoU_c)`` exactly.

    Args:
        probs: (N, K) class probabilities.
        labels: (N,) class indices in [0, K).

    Returns:
        Scalar loss (0 when ``labels`` is empty).
    """
    losses = []
    for c in torch.unique(labels).tolist():
        fg = (labels == c).to(probs.dtype)
        errors = (fg - probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        fg_sorted = fg[order]
        # Gradient of the Lovasz extension: successive differences of the Jaccard loss along the sorted errors.
        total = fg_sorted.sum()
        intersection = total - fg_sorted.cumsum(0)
        union = total + (1.0 - fg_sorted).cumsum(0)
        jaccard = 1.0 - intersection / union
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(errors_sorted, jaccard))
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


@MODELS.register_module()
class OccupancyHead(BaseModule):
    """Occ3D semantic occupancy from a BEV feature, with 2D ops only (FlashOcc's ``BEVOCCHead2D``).

    1. Resample: the shared feature (B, C, Y, X), augmented LiDAR frame over ``bev_range``, is read with
       one bilinear 4D ``F.grid_sample`` at the centres of the ego-frame voxel columns of the occupancy
       grid (``occ_range``, ``grid_size``; Occ3D's 200 x 200 x 16 at 0.4 m by default), mapped into the
       LiDAR frame with each sample's ``lidar2ego`` (module docstring: the BEV augmentation cancels).
       The column centres are taken at the grid's mid height (``lidar2ego`` is nearly a pure yaw).
       Result: (B, C, X, Y), row i = ego x index, column j = ego y index, as the labels.
    2. ``num_convs`` 3x3 conv-BN-ReLU (mmcv ``ConvModule``) with ``feat_channels``.
    3. Channel-to-height: ``proj='mlp'`` is FlashOcc's Linear-Softplus-Linear (hidden ``proj_hidden``),
       ``proj='conv'`` a single Linear, applied channels-last to ``Z * num_classes`` outputs (output
       ``z * num_classes + k``) and reshaped to logits (B, num_classes, X, Y, Z): a permuted view of a
       contiguous (B, X, Y, Z, num_classes) tensor. Channels-last makes the projection one GEMM and
       lets the loss read each voxel's class scores as a contiguous row.

    Loss ``loss_occ``: class-weighted cross-entropy (mmdet's ``CrossEntropyLoss``) over the voxels in
    ``mask`` (``'camera'`` reads ``gt_occ['mask_camera']``, ``'lidar'`` ``gt_occ['mask_lidar']``, None
    every voxel), normalised as a weighted mean, ``sum(w_y m ce) / sum(w_y m)``, so the class weights
    set the balance between classes but not the loss scale. ``lovasz_weight > 0`` adds ``loss_lovasz``
    (Lovasz-softmax over the masked voxels, classes present in the batch).

    ``lidar2ego`` per sample is read from each data sample's metainfo key ``lidar2ego`` (4x4); samples
    without it use the configured ``lidar2ego`` (nominal nuScenes mount by default; logged once).
    ``forward`` takes it as an optional (B, 4, 4) input, so an exported graph gets it as an input.

    Reads ``gt_occ`` (dict of (X, Y, Z) tensors ``semantics`` with 17 = free, ``mask_camera``,
    ``mask_lidar``); writes ``pred_occ`` (X, Y, Z) uint8 labels (argmax), scored by
    ``OccupancyMIoUMetric``.

    Args:
        in_channels: channels of the shared feature.
        bev_range: extent of the shared feature, (x_min, y_min, z_min, x_max, y_max, z_max), metres.
        occ_range: extent of the occupancy grid in the ego frame, same layout.
        grid_size: voxels (X, Y, Z) of the occupancy grid.
        num_classes: classes including free (Occ3D: 18, free = 17).
        feat_channels: channels of the conv tower.
        num_convs: 3x3 conv-BN-ReLU layers after the resampling (>= 1).
        proj: ``'mlp'`` (FlashOcc) or ``'conv'``.
        proj_hidden: hidden channels of the ``'mlp'`` projection; default ``2 * feat_channels``.
        lidar2ego: 4x4 LiDAR -> ego transform used when a sample carries none; rigid (rotation +
            translation). Default: ``NUSCENES_LIDAR2EGO``.
        mask: ``'camera'``, ``'lidar'`` or None: which voxels the loss counts.
        class_weight: per-class cross-entropy weights (``num_classes`` floats), or None.
        class_frequencies: per-class voxel counts; gives ``class_weight = 1 / ln(e + n_c)``
            (exclusive with ``class_weight``).
        loss_weight: factor on ``loss_occ``.
        lovasz_weight: factor on ``loss_lovasz``; 0 (default) leaves it out.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        in_channels: int,
        bev_range: Sequence[float],
        occ_range: Sequence[float] = OCC3D_RANGE,
        grid_size: Sequence[int] = OCC3D_GRID,
        num_classes: int = FREE_LABEL + 1,
        feat_channels: int = 64,
        num_convs: int = 2,
        proj: str = "mlp",
        proj_hidden: int | None = None,
        lidar2ego: Sequence[Sequence[float]] | None = None,
        mask: str | None = "camera",
        class_weight: Sequence[float] | None = None,
        class_frequencies: Sequence[float] | None = None,
        loss_weight: float = 1.0,
        lovasz_weight: float = 0.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if mask not in MASK_KEYS:
            raise ValueError(f"OccupancyHead: mask must be 'camera', 'lidar' or None, got {mask!r}")
        if proj not in ("mlp", "conv"):
            raise ValueError(f"OccupancyHead: proj must be 'mlp' or 'conv', got {proj!r}")
        if num_convs < 1:
            raise ValueError(f"OccupancyHead: num_convs must be >= 1, got {num_convs}")
        if class_weight is not None and class_frequencies is not None:
            raise ValueError("OccupancyHead: give class_weight or class_frequencies, not both")
        if class_frequencies is not None:
            class_weight = log_frequency_class_weights(class_frequencies)
        if class_weight is not None and len(class_weight) != num_classes:
            raise ValueError(f"OccupancyHead: class_weight has {len(class_weight)} entries, need {num_classes}")
        if len(grid_size) != 3 or len(occ_range) != 6 or len(bev_range) != 6:
            raise ValueError("OccupancyHead: grid_size needs 3 entries, occ_range and bev_range 6")
        self.num_classes = num_classes
        self.grid_size = tuple(int(n) for n in grid_size)
        self.bev_range = tuple(float(v) for v in bev_range)
        self.mask_key = MASK_KEYS[mask]
        self.loss_weight = float(loss_weight)
        self.lovasz_weight = float(lovasz_weight)
        self._warned_default_lidar2ego = False

        convs = [ConvModule(in_channels, feat_channels, 3, padding=1, norm_cfg=dict(type="BN"))]
        convs += [
            ConvModule(feat_channels, feat_channels, 3, padding=1, norm_cfg=dict(type="BN"))
            for _ in range(num_convs - 1)
        ]
        self.body = nn.Sequential(*convs)
        out_channels = num_classes * self.grid_size[2]
        if proj == "mlp":
            hidden = proj_hidden or 2 * feat_channels
            self.proj = nn.Sequential(nn.Linear(feat_channels, hidden), nn.Softplus(), nn.Linear(hidden, out_channels))
        else:
            self.proj = nn.Linear(feat_channels, out_channels)

        from mmdet.models.losses import CrossEntropyLoss

        weights = [1.0] * num_classes if class_weight is None else [float(w) for w in class_weight]
        self.ce = CrossEntropyLoss(use_sigmoid=False, class_weight=weights, loss_weight=1.0)
        self.register_buffer("class_weight", torch.tensor(weights, dtype=torch.float32), persistent=False)

        lo, hi = np.asarray(occ_range[:3], np.float64), np.asarray(occ_range[3:], np.float64)
        voxel = (hi - lo) / np.asarray(self.grid_size)
        xs = lo[0] + (np.arange(self.grid_size[0]) + 0.5) * voxel[0]
        ys = lo[1] + (np.arange(self.grid_size[1]) + 0.5) * voxel[1]
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        centres = np.stack([gx, gy, np.full_like(gx, 0.5 * (lo[2] + hi[2]))], -1)  # (X, Y, 3), ego frame
        self.register_buffer("column_centres", torch.as_tensor(centres, dtype=torch.float32), persistent=False)
        default = torch.as_tensor(np.asarray(lidar2ego or NUSCENES_LIDAR2EGO, np.float64), dtype=torch.float32)
        if default.shape != (4, 4):
            raise ValueError(f"OccupancyHead: lidar2ego must be 4x4, got {tuple(default.shape)}")
        self.register_buffer("default_lidar2ego", default, persistent=False)

    # ------------------------------------------------------------------ geometry
    def lidar_positions(self, lidar2ego: Tensor) -> Tensor:
        """LiDAR-frame (x, y) in metres of every ego voxel-column centre.

        Args:
            lidar2ego: (B, 4, 4) rigid LiDAR -> ego transforms.

        Returns:
            (B, X, Y, 2): ``inv(lidar2ego) @ centre`` restricted to x, y, with the inverse written as
            ``R^T (p - t)`` (exportable; no matrix inverse op).
        """
        rot = lidar2ego[:, :3, :3].float()
        offset = self.column_centres[None] - lidar2ego[:, None, None, :3, 3].float()  # (B, X, Y, 3)
        # Column k of R is the LiDAR's k-th axis in the ego frame; R^T d has components axis_k . d.
        lidar_x = (offset * rot[:, None, None, :, 0]).sum(-1)
        lidar_y = (offset * rot[:, None, None, :, 1]).sum(-1)
        return torch.stack([lidar_x, lidar_y], dim=-1)

    def sampling_grid(self, lidar2ego: Tensor) -> Tensor:
        """``F.grid_sample`` grid (B, X, Y, 2) into the (B, C, Y, X) feature (``align_corners=False``:
        -1 and 1 are the outer cell edges of ``bev_range``); last axis (column = x, row = y)."""
        x_min, y_min, _, x_max, y_max, _ = self.bev_range
        pos = self.lidar_positions(lidar2ego)
        gx = (pos[..., 0] - x_min) / (x_max - x_min) * 2.0 - 1.0
        gy = (pos[..., 1] - y_min) / (y_max - y_min) * 2.0 - 1.0
        return torch.stack([gx, gy], dim=-1)

    def resample(self, feat: Tensor, lidar2ego: Tensor | None = None) -> Tensor:
        """The feature (B, C, Y, X) read at the ego voxel columns: (B, C, X, Y)."""
        if lidar2ego is None:
            lidar2ego = self.default_lidar2ego.expand(feat.shape[0], 4, 4)
        grid = self.sampling_grid(lidar2ego).to(feat.dtype)
        return F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # ------------------------------------------------------------------ forward
    def forward(self, feat: Tensor, lidar2ego: Tensor | None = None) -> Tensor:
        """Args: feat (B, C, Y, X); lidar2ego (B, 4, 4) or None (the configured mount for every sample).

        Returns:
            Logits (B, num_classes, X, Y, Z) on the ego-frame occupancy grid.
        """
        x = self.body(self.resample(feat, lidar2ego)).permute(0, 2, 3, 1)  # (B, X, Y, C)
        x = self.proj(x)  # (B, X, Y, Z * K), output z * K + k
        b, nx, ny, _ = x.shape
        return x.view(b, nx, ny, self.grid_size[2], self.num_classes).permute(0, 4, 1, 2, 3)

    def batch_lidar2ego(self, data_samples: Sequence[BaseDataElement], like: Tensor) -> Tensor:
        """(B, 4, 4) from each sample's metainfo ``lidar2ego``, the configured mount where absent."""
        mats = []
        for sample in data_samples:
            value = sample.get("lidar2ego", None) if hasattr(sample, "get") else None
            if value is None:
                if not self._warned_default_lidar2ego:
                    print_log(
                        "OccupancyHead: data samples carry no 'lidar2ego' metainfo; using the configured "
                        "lidar2ego for every such sample",
                        logger="current",
                        level=logging.WARNING,
                    )
                    self._warned_default_lidar2ego = True
                mats.append(self.default_lidar2ego)
            else:
                mats.append(torch.as_tensor(np.asarray(value, np.float32)).to(self.default_lidar2ego.device))
        out = torch.stack(mats).to(like.device)
        if out.shape[1:] != (4, 4):
            raise ValueError(f"OccupancyHead: lidar2ego must be 4x4 per sample, got {tuple(out.shape[1:])}")
        return out

    # ------------------------------------------------------------------ loss
    def loss(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Returns ``loss_occ`` (and ``loss_lovasz`` when enabled); keys without the task prefix."""
        return self.loss_by_feat(self(feat, self.batch_lidar2ego(data_samples, feat)), data_samples)

    def _targets(self, data_samples: Sequence[BaseDataElement], device: torch.device) -> tuple[Tensor, Tensor]:
        semantics, masks = [], []
        for sample in data_samples:
            gt = sample.get("gt_occ", None) if hasattr(sample, "get") else None
            if gt is None:
                raise KeyError("OccupancyHead: data samples need a 'gt_occ' field for the loss (LoadOccupancy)")
            sem = torch.as_tensor(gt["semantics"])
            if tuple(sem.shape) != self.grid_size:
                raise ValueError(
                    f"OccupancyHead: gt_occ semantics is {tuple(sem.shape)} but the head predicts "
                    f"{self.grid_size}; match occ_range / grid_size to LoadOccupancy"
                )
            semantics.append(sem.long())
            masks.append(torch.ones_like(sem, dtype=torch.bool) if self.mask_key is None else gt[self.mask_key])
        semantics = torch.stack(semantics).to(device)
        mask = torch.stack([torch.as_tensor(m).bool() for m in masks]).to(device)
        return semantics, mask

    def loss_by_feat(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Args: logits (B, K, X, Y, Z); data_samples with ``gt_occ``."""
        semantics, mask = self._targets(data_samples, logits.device)
        if semantics.max() >= self.num_classes or semantics.min() < 0:
            raise ValueError(f"OccupancyHead: gt_occ semantics outside [0, {self.num_classes})")
        # One row of class scores per counted voxel (forward's logits are a view of (B, X, Y, Z, K), so the
        # rows are contiguous there); voxels outside the mask are dropped before the softmax.
        keep = mask.reshape(-1)
        rows = logits.float().permute(0, 2, 3, 4, 1).reshape(-1, self.num_classes)[keep]
        labels = semantics.reshape(-1)[keep]
        # Weighted mean: each counted voxel weighs its class's weight (F.cross_entropy's convention); with no
        # voxel in the mask the loss is 0 (mmdet adds eps to the factor).
        avg_factor = self.class_weight[labels].sum()
        loss = self.ce(rows, labels, avg_factor=avg_factor)
        losses = {"loss_occ": loss * self.loss_weight}
        if self.lovasz_weight > 0:
            losses["loss_lovasz"] = lovasz_softmax(rows.softmax(1), labels) * self.lovasz_weight
        return losses

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def predict(self, feat: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        """Writes ``pred_occ`` (X, Y, Z) uint8 labels (17 = free) into each sample; returns the samples."""
        return self.predict_by_feat(self(feat, self.batch_lidar2ego(data_samples, feat)), data_samples)

    @torch.no_grad()
    def predict_by_feat(self, logits: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        if self.num_classes > 256:
            raise ValueError("OccupancyHead: uint8 labels hold at most 256 classes")
        labels = logits.argmax(1).to(torch.uint8).cpu()
        for sample, label in zip(data_samples, labels):
            sample.pred_occ = label
        return data_samples


__all__ = ["OccupancyHead", "NUSCENES_LIDAR2EGO", "lovasz_softmax", "log_frequency_class_weights"]
