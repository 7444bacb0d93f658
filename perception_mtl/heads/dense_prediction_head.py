"""Base of the dense (per-pixel) task heads: multi-scale features -> one map at image resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor, nn


class DensePredictionHead(nn.Module):
    """Light FPN-style decoder shared by the dense heads.

    Each input level goes through a 1x1 convolution to ``channels``, is upsampled bilinearly to
    the finest level and summed; ``num_convs`` 3x3 conv-BN-ReLU layers follow, then a 1x1
    predictor, and the map is resized bilinearly to the image size. Subclasses set
    ``out_channels`` and implement ``loss_by_feat`` / ``predict_by_feat``.

    Args:
        in_channels: channels of each input level (e.g. ``backbone.feature_info.channels()``).
        out_channels: predicted channels.
        channels: decoder width.
        num_convs: 3x3 convolutions after fusion.
        loss_weight: factor on this head's losses.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        channels: int = 64,
        num_convs: int = 2,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError(f"{type(self).__name__}: in_channels must list at least one level")
        if channels < 1 or num_convs < 0:
            raise ValueError(f"{type(self).__name__}: need channels >= 1, num_convs >= 0; got {channels}, {num_convs}")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.loss_weight = float(loss_weight)
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in self.in_channels)
        self.convs = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
                )
                for _ in range(num_convs)
            )
        )
        self.predictor = nn.Conv2d(channels, out_channels, 1)

    def forward(self, feats: Sequence[Tensor], out_size: tuple[int, int]) -> Tensor:
        """Args: feats, one (B, C_i, H_i, W_i) map per level; out_size (H, W). Returns (B, out_channels, H, W)."""
        if len(feats) != len(self.lateral):
            raise ValueError(f"{type(self).__name__}: got {len(feats)} feature levels, built for {len(self.lateral)}")
        finest = max(range(len(feats)), key=lambda i: feats[i].shape[-1] * feats[i].shape[-2])
        size = feats[finest].shape[-2:]
        fused = None
        for conv, feat in zip(self.lateral, feats):
            y = conv(feat)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            fused = y if fused is None else fused + y
        out = self.predictor(self.convs(fused))
        return F.interpolate(out, size=tuple(out_size), mode="bilinear", align_corners=False)

    def loss(self, feats: Sequence[Tensor], data_samples: Sequence[BaseDataElement], out_size) -> dict[str, Tensor]:
        """Losses of this head (keys without the task prefix, already scaled by ``loss_weight``)."""
        losses = self.loss_by_feat(self(feats, out_size), data_samples)
        return {k: v * self.loss_weight for k, v in losses.items()}

    def predict(
        self, feats: Sequence[Tensor], data_samples: Sequence[BaseDataElement], out_size
    ) -> Sequence[BaseDataElement]:
        """Writes this head's prediction field into each sample and returns the samples."""
        return self.predict_by_feat(self(feats, out_size), data_samples)

    def loss_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        raise NotImplementedError

    def predict_by_feat(self, pred: Tensor, data_samples: Sequence[BaseDataElement]) -> Sequence[BaseDataElement]:
        raise NotImplementedError

    def _stack_targets(self, data_samples: Sequence[BaseDataElement], name: str, like: Tensor) -> Tensor:
        """(B, H, W) targets from each sample's ``name`` field, on ``like``'s device."""
        try:
            targets = [getattr(s, name) for s in data_samples]
        except AttributeError as err:
            raise KeyError(f"{type(self).__name__}: data samples need a '{name}' field for the loss") from err
        target = torch.stack([torch.as_tensor(t) for t in targets]).to(like.device)
        if target.shape[-2:] != like.shape[-2:]:
            raise ValueError(
                f"{type(self).__name__}: {name} is {tuple(target.shape[-2:])} "
                f"but the prediction is {tuple(like.shape[-2:])}"
            )
        return target
