"""The smallest working model: BEV point raster -> per-class footprint masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.registry import MODELS


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


@MODELS.register_module()
class ToyBEVSegmentor(BaseModel):
    """A three-scale conv encoder-decoder over a BEV raster, trained with per-class BCE.

    Args:
        in_channels: channels of ``inputs['bev']``.
        num_classes: output masks.
        base_channels: width of the first stage (later stages are 2x and 4x as wide).
        pos_weight: BCE weight of foreground cells, which are rare.
        data_preprocessor: MMEngine data preprocessor config; the base one moves data to device.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 2,
        base_channels: int = 16,
        pos_weight: float = 2.0,
        data_preprocessor: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        c = base_channels
        self.stem = nn.Sequential(_conv_block(in_channels, c), _conv_block(c, c))
        self.down1 = nn.Sequential(_conv_block(c, 2 * c, stride=2), _conv_block(2 * c, 2 * c))
        self.down2 = nn.Sequential(_conv_block(2 * c, 4 * c, stride=2), _conv_block(4 * c, 4 * c))
        self.fuse = _conv_block(7 * c, 2 * c)
        self.classifier = nn.Conv2d(2 * c, num_classes, 1)
        self.register_buffer("pos_weight", torch.full((num_classes, 1, 1), float(pos_weight)), persistent=False)

    def forward(
        self,
        inputs: dict[str, Tensor | list[Tensor]],
        data_samples: list[BaseDataElement] | None = None,
        mode: str = "tensor",
    ) -> Tensor | dict[str, Tensor] | list[BaseDataElement]:
        """Args: inputs['bev'] is (B, C, H, W) or a list of (C, H, W). Returns per ``mode``:
        'tensor' logits (B, K, H, W); 'loss' a dict; 'predict' the samples with ``pred_bev_seg``
        (K, H, W) probabilities."""
        bev = inputs["bev"]
        if isinstance(bev, (list, tuple)):
            bev = torch.stack(list(bev))
        logits = self._logits(bev.float())
        if mode == "tensor":
            return logits
        if mode == "loss":
            if data_samples is None:
                raise ValueError("ToyBEVSegmentor: mode='loss' needs data_samples with gt_bev_seg")
            target = torch.stack([s.gt_bev_seg for s in data_samples]).to(logits)
            return {"bev_seg.loss_bce": F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)}
        if mode == "predict":
            samples = data_samples if data_samples is not None else [BaseDataElement() for _ in logits]
            for sample, prob in zip(samples, logits.sigmoid()):
                sample.pred_bev_seg = prob.detach()
            return samples
        raise ValueError(f"ToyBEVSegmentor: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")

    def _logits(self, bev: Tensor) -> Tensor:
        fine = self.stem(bev)
        mid = self.down1(fine)
        coarse = self.down2(mid)
        size = fine.shape[-2:]
        up = [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (mid, coarse)]
        return self.classifier(self.fuse(torch.cat([fine, *up], 1)))
