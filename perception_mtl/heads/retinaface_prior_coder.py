"""RetinaFace anchors ("priors") and the variance box / landmark encoding of SSD and RetinaFace."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from torch import Tensor

DEFAULT_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
DEFAULT_STRIDES = (8, 16, 32)

# RetinaFace's decoder caps the scaled log-size at 10 (a box at most e^10 times its prior);
# mmdet's ``delta2bbox`` clamps it to +-|log(wh_ratio_clip)|, so this ratio keeps that cap.
_MAX_LOG_SIZE = 10.0


class RetinaFacePriorCoder:
    """Square anchors per feature-map cell and the (0.1, 0.2) variance encoding, on mmdet's pieces.

    Priors come from mmdet's :class:`AnchorGenerator`: level ``l`` with stride ``s_l`` has, at every
    cell (i, j) of its (H_l, W_l) map, one square prior per entry of ``min_sizes[l]``, centred on
    ``((j + 0.5) s_l, (i + 0.5) s_l)`` pixels (RetinaFace's convention, given to the generator as
    explicit per-level ``centers`` of the first cell, since its ``center_offset`` is a fraction of
    the base size, not of the stride). Priors are xyxy pixels, ordered level by level, then
    row-major over cells, then by size: the order of the heads' flattened outputs
    ((B, A, H, W) reshaped to (B, H * W * A)).

    Boxes use mmdet's :class:`DeltaXYWHBBoxCoder` with means 0 and stds (v0, v0, v1, v1), which is
    RetinaFace / SSD's variance encoding with (v0, v1) = (0.1, 0.2): for a prior of centre
    (cx, cy) and size (w, h) (x2 - x1, no +1 pixel in either), a box maps to
    ``((gx - cx) / (v0 w), (gy - cy) / (v0 h), log(gw / w) / v1, log(gh / h) / v1)``.

    Landmarks are encoded by hand, ``(x, y) -> ((x - cx) / (v0 w), (y - cy) / (v0 h))``: mmdet has
    no coder for points relative to an anchor (its keypoint code lives in mmpose, relative to
    boxes or heatmaps, without variances), so this is two small functions.

    Args:
        min_sizes: per level, the prior side lengths in pixels. mmdet's generator shares its
            ``scales`` across levels, so every level must be the same multiples of its first size
            (RetinaFace's (m, 2m) per level is).
        strides: per level, the feature stride in pixels.
        variances: (v0, v1).
        clip: clip the priors to the image as RetinaFace's ``clip`` does (centre and size clamped
            to the image extent; off by default, as there).
    """

    def __init__(
        self,
        min_sizes: Sequence[Sequence[float]] = DEFAULT_MIN_SIZES,
        strides: Sequence[int] = DEFAULT_STRIDES,
        variances: Sequence[float] = (0.1, 0.2),
        clip: bool = False,
    ) -> None:
        if len(min_sizes) != len(strides):
            raise ValueError(f"RetinaFacePriorCoder: {len(min_sizes)} min_sizes levels but {len(strides)} strides")
        if len(variances) != 2 or min(variances) <= 0:
            raise ValueError(f"RetinaFacePriorCoder: variances must be two positive numbers, got {variances}")
        self.min_sizes = tuple(tuple(float(s) for s in sizes) for sizes in min_sizes)
        if any(len(sizes) != len(self.min_sizes[0]) for sizes in self.min_sizes):
            raise ValueError("RetinaFacePriorCoder: every level needs the same number of priors per cell")
        scales = [s / self.min_sizes[0][0] for s in self.min_sizes[0]]
        if any(not math.isclose(s / sizes[0], scale) for sizes in self.min_sizes for s, scale in zip(sizes, scales)):
            raise ValueError(
                f"RetinaFacePriorCoder: every level's min_sizes must be the same multiples of its first size "
                f"(mmdet's AnchorGenerator shares scales across levels), got {self.min_sizes}"
            )
        self.strides = tuple(int(s) for s in strides)
        self.variances = (float(variances[0]), float(variances[1]))
        self.clip = clip
        self.prior_generator = AnchorGenerator(
            strides=self.strides,
            ratios=[1.0],
            scales=scales,
            base_sizes=[sizes[0] for sizes in self.min_sizes],
            centers=[(s / 2, s / 2) for s in self.strides],
        )
        v0, v1 = self.variances
        self.box_coder = DeltaXYWHBBoxCoder(target_means=(0.0, 0.0, 0.0, 0.0), target_stds=(v0, v0, v1, v1))

    @property
    def num_anchors(self) -> int:
        """Priors per cell (A)."""
        return len(self.min_sizes[0])

    def priors(self, feat_sizes: Sequence[tuple[int, int]], img_size: tuple[int, int], device=None) -> Tensor:
        """(P, 4) xyxy priors in pixels for feature maps of ``feat_sizes`` [(H_l, W_l)] and an (H, W) image."""
        if len(feat_sizes) != len(self.strides):
            raise ValueError(f"RetinaFacePriorCoder: {len(feat_sizes)} feature levels, built for {len(self.strides)}")
        levels = self.prior_generator.grid_priors(
            [tuple(s) for s in feat_sizes], dtype=torch.float32, device=device or "cpu"
        )
        priors = torch.cat(levels)
        if self.clip:
            img_h, img_w = img_size
            scale = priors.new_tensor([img_w, img_h, img_w, img_h])
            priors = bbox_cxcywh_to_xyxy(torch.minimum(bbox_xyxy_to_cxcywh(priors).clamp(min=0), scale))
        return priors

    def encode_boxes(self, boxes: Tensor, priors: Tensor) -> Tensor:
        """(N, 4) xyxy boxes matched to (N, 4) xyxy priors -> (N, 4) regression targets."""
        return self.box_coder.encode(priors, boxes)

    def decode_boxes(self, deltas: Tensor, priors: Tensor) -> Tensor:
        """(..., P, 4) regressions with (P, 4) xyxy priors -> (..., P, 4) xyxy boxes in pixels."""
        flat = deltas.reshape(-1, 4)
        rois = priors.expand(deltas.shape).reshape(-1, 4)
        boxes = self.box_coder.decode(rois, flat, wh_ratio_clip=math.exp(-_MAX_LOG_SIZE))
        return boxes.reshape(deltas.shape)

    def encode_landmarks(self, landmarks: Tensor, priors: Tensor) -> Tensor:
        """(N, K, 2) landmarks matched to (N, 4) xyxy priors -> (N, 2K) regression targets."""
        centre, size = _centre_size(priors)
        deltas = (landmarks - centre[:, None]) / (self.variances[0] * size[:, None])
        return deltas.flatten(1)

    def decode_landmarks(self, deltas: Tensor, priors: Tensor) -> Tensor:
        """(..., P, 2K) regressions with (P, 4) xyxy priors -> (..., P, K, 2) landmarks in pixels."""
        centre, size = _centre_size(priors)
        deltas = deltas.unflatten(-1, (-1, 2))
        return centre[:, None] + deltas * self.variances[0] * size[:, None]


def _centre_size(priors: Tensor) -> tuple[Tensor, Tensor]:
    """(P, 4) xyxy -> centres (P, 2) and sizes (P, 2), as ``DeltaXYWHBBoxCoder`` defines them."""
    return (priors[:, :2] + priors[:, 2:]) * 0.5, priors[:, 2:] - priors[:, :2]
