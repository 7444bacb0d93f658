"""RetinaFace anchors ("priors") and the variance box / landmark encoding of SSD and RetinaFace."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
DEFAULT_STRIDES = (8, 16, 32)


class RetinaFacePriorCoder:
    """Square anchors per feature-map cell and the (0.1, 0.2) variance encoding.

    Level ``l`` with stride ``s_l`` has, at every cell (i, j) of its (H_l, W_l) map, one square
    prior per entry of ``min_sizes[l]``, centred on ``((j + 0.5) s_l, (i + 0.5) s_l)`` pixels. Priors
    are ordered level by level, then row-major over cells, then by size, which is the order of the
    heads' flattened outputs ((B, A, H, W) reshaped to (B, H * W * A)).

    Encoding (RetinaFace / SSD), for a prior (cx, cy, w, h) and variances (v0, v1):

    - box (x1, y1, x2, y2) -> ((gx - cx) / (v0 w), (gy - cy) / (v0 h), log(gw / w) / v1, log(gh / h) / v1);
    - landmark (x, y) -> ((x - cx) / (v0 w), (y - cy) / (v0 h)).

    Args:
        min_sizes: per level, the prior side lengths in pixels.
        strides: per level, the feature stride in pixels.
        variances: (v0, v1).
        clip: clip the priors to the image (RetinaFace's ``clip``; off by default, as there).
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
        self.strides = tuple(int(s) for s in strides)
        self.variances = (float(variances[0]), float(variances[1]))
        self.clip = clip

    @property
    def num_anchors(self) -> int:
        """Priors per cell (A)."""
        return len(self.min_sizes[0])

    def priors(self, feat_sizes: Sequence[tuple[int, int]], img_size: tuple[int, int], device=None) -> Tensor:
        """(P, 4) priors (cx, cy, w, h) in pixels for feature maps of ``feat_sizes`` [(H_l, W_l)]."""
        if len(feat_sizes) != len(self.strides):
            raise ValueError(f"RetinaFacePriorCoder: {len(feat_sizes)} feature levels, built for {len(self.strides)}")
        levels = []
        for (h, w), stride, sizes in zip(feat_sizes, self.strides, self.min_sizes):
            ys, xs = torch.meshgrid(
                (torch.arange(h, dtype=torch.float32, device=device) + 0.5) * stride,
                (torch.arange(w, dtype=torch.float32, device=device) + 0.5) * stride,
                indexing="ij",
            )
            a = len(sizes)
            centres = torch.stack([xs, ys], -1).reshape(h * w, 1, 2).expand(h * w, a, 2)
            side = torch.tensor(sizes, dtype=torch.float32, device=device).reshape(1, a, 1).expand(h * w, a, 2)
            levels.append(torch.cat([centres, side], -1).reshape(-1, 4))
        priors = torch.cat(levels)
        if self.clip:
            img_h, img_w = img_size
            scale = priors.new_tensor([img_w, img_h, img_w, img_h])
            priors = (priors / scale).clamp(0, 1) * scale
        return priors

    def encode_boxes(self, boxes: Tensor, priors: Tensor) -> Tensor:
        """(N, 4) xyxy boxes matched to (N, 4) priors -> (N, 4) regression targets."""
        v0, v1 = self.variances
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6)
        return torch.cat([(centre - priors[:, :2]) / (v0 * priors[:, 2:]), torch.log(size / priors[:, 2:]) / v1], 1)

    def decode_boxes(self, deltas: Tensor, priors: Tensor) -> Tensor:
        """(..., P, 4) regressions with (P, 4) priors -> (..., P, 4) xyxy boxes in pixels."""
        v0, v1 = self.variances
        centre = priors[:, :2] + deltas[..., :2] * v0 * priors[:, 2:]
        size = priors[:, 2:] * torch.exp((deltas[..., 2:] * v1).clamp(max=10.0))
        return torch.cat([centre - size / 2, centre + size / 2], -1)

    def encode_landmarks(self, landmarks: Tensor, priors: Tensor) -> Tensor:
        """(N, K, 2) landmarks matched to (N, 4) priors -> (N, 2K) regression targets."""
        v0 = self.variances[0]
        deltas = (landmarks - priors[:, None, :2]) / (v0 * priors[:, None, 2:])
        return deltas.flatten(1)

    def decode_landmarks(self, deltas: Tensor, priors: Tensor) -> Tensor:
        """(..., P, 2K) regressions with (P, 4) priors -> (..., P, K, 2) landmarks in pixels."""
        v0 = self.variances[0]
        deltas = deltas.unflatten(-1, (-1, 2))
        return priors[:, None, :2] + deltas * v0 * priors[:, None, 2:]
