"""CenterHead's per-group output branches with the single-conv branches packed into one convolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmdet3d.models.dense_heads.centerpoint_head import SeparateHead
from mmengine.model import BaseModule
from mmengine.model.weight_init import kaiming_init
from torch import Tensor, nn

from perception_mtl.registry import MODELS


@MODELS.register_module()
class PackedSeparateHead(BaseModule):
    """Drop-in for mmdet3d's ``SeparateHead`` (same arguments, same output dict) that computes every
    branch with ``num_conv == 1`` (heatmap, reg, height, dim, rot, vel in the demo configs) as ONE
    convolution whose output channels are split per branch.

    The maths is that of separate convolutions from the same input; the packing is for speed: a
    3x3 convolution with 1-3 output channels runs at a few GFLOP/s in oneDNN on a CPU, and the six
    class groups of the nuScenes head have 36 of them (a large share of a demo training step). Branches
    with ``num_conv > 1`` keep mmdet3d's per-branch layers (a ``SeparateHead`` over those branches).

    Initialisation differs from mmdet3d's on purpose: Kaiming (fan_out) over the packed convolution,
    i.e. over all its outputs, so a 3x3 regression output starts with std sqrt(2 / (9 K)) for K
    packed outputs (0.14 for a class group's 11-12) instead of sqrt(2 / (9 k)) for its own k = 1-3
    outputs (0.27-0.47). The smaller start matters on short schedules (large initial box outputs waste
    them), hence also ``output_init_std`` for an explicit normal initialisation.

    Args:
        in_channels: input channels (CenterHead's ``share_conv_channel``).
        heads: ``{name: (out_channels, num_conv)}`` as CenterHead passes it (``heatmap`` included).
        head_conv: hidden channels of the ``num_conv > 1`` branches.
        final_kernel: kernel size of the output convolutions.
        init_bias: initial bias of the heatmap outputs (focal-loss prior).
        output_init_std: if given, the packed output weights start as N(0, std) instead of Kaiming
            (CenterDetHead still sets the heatmap rows to std 0.01).
        conv_cfg, norm_cfg, bias: for the ``num_conv > 1`` branches (as in mmdet3d).
    """

    def __init__(
        self,
        in_channels: int,
        heads: dict,
        head_conv: int = 64,
        final_kernel: int = 1,
        init_bias: float = -2.19,
        conv_cfg: dict | None = None,
        norm_cfg: dict | None = None,
        bias: str | bool = "auto",
        output_init_std: float | None = None,
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        if init_cfg is not None:
            raise ValueError("PackedSeparateHead initialises itself (as mmdet3d's SeparateHead); drop init_cfg")
        super().__init__()
        self.heads = dict(heads)
        self.init_bias = float(init_bias)
        self.output_init_std = None if output_init_std is None else float(output_init_std)
        self.packed_names = [name for name, (_, num_conv) in self.heads.items() if num_conv == 1]
        self.packed_sizes = [int(self.heads[name][0]) for name in self.packed_names]
        self.packed = (
            nn.Conv2d(in_channels, sum(self.packed_sizes), final_kernel, padding=final_kernel // 2, bias=True)
            if self.packed_names
            else None
        )
        deep = {name: spec for name, spec in self.heads.items() if name not in self.packed_names}
        self.deep = (
            SeparateHead(
                in_channels,
                deep,
                head_conv=head_conv,
                final_kernel=final_kernel,
                init_bias=init_bias,
                conv_cfg=conv_cfg or dict(type="Conv2d"),
                norm_cfg=norm_cfg or dict(type="BN2d"),
                bias=bias,
                **kwargs,
            )
            if deep
            else None
        )

    def init_weights(self) -> None:
        """Kaiming (fan_out over the packed outputs) or N(0, output_init_std); heatmap bias ``init_bias``."""
        if self.packed is not None:
            if self.output_init_std is None:
                kaiming_init(self.packed, mode="fan_out", nonlinearity="relu", distribution="normal")
            else:
                nn.init.normal_(self.packed.weight, std=self.output_init_std)
                nn.init.zeros_(self.packed.bias)
            if "heatmap" in self.packed_names:
                self.output_bias("heatmap").data.fill_(self.init_bias)
        if self.deep is not None:
            self.deep.init_weights()

    def _packed_rows(self, name: str) -> slice:
        start = sum(self.packed_sizes[: self.packed_names.index(name)])
        return slice(start, start + self.heads[name][0])

    def output_weight(self, name: str) -> Tensor:
        """Weight (a view into the packed parameter) of the output convolution of branch ``name``."""
        if name in self.packed_names:
            return self.packed.weight[self._packed_rows(name)]
        return getattr(self.deep, name)[-1].weight

    def output_bias(self, name: str) -> Tensor:
        """Bias (a view) of the output convolution of branch ``name``."""
        if name in self.packed_names:
            return self.packed.bias[self._packed_rows(name)]
        return getattr(self.deep, name)[-1].bias

    def forward(self, x: Tensor, packed_maps: Tensor | None = None) -> dict[str, Tensor]:
        """Args: x (B, C, H, W); packed_maps, the packed convolution's output when computed outside
        (see :meth:`forward_many`). Returns ``{name: (B, out_channels, H, W)}`` in the order of ``heads``."""
        out = {}
        if self.packed is not None:
            if packed_maps is None:
                packed_maps = self.packed(x)
            # Cloned: split() returns views, and mmdet3d's CenterHead sigmoids the heatmap in place.
            maps = packed_maps.split(self.packed_sizes, 1)
            out.update((name, m.clone()) for name, m in zip(self.packed_names, maps))
        if self.deep is not None:
            out.update(self.deep(x))
        return {name: out[name] for name in self.heads}

    @staticmethod
    def forward_many(heads: Sequence[PackedSeparateHead], x: Tensor) -> list[dict[str, Tensor]]:
        """Several heads on the same input (CenterHead's class groups) with ONE convolution for all
        their packed branches (their weights concatenated; same kernel size needed)."""
        packed = [head for head in heads if head.packed is not None]
        if not packed:
            return [head(x) for head in heads]
        kernels = {head.packed.kernel_size for head in packed}
        if len(kernels) > 1:
            raise ValueError(f"PackedSeparateHead.forward_many: the heads' final kernels differ: {sorted(kernels)}")
        weight = torch.cat([head.packed.weight for head in packed])
        bias = torch.cat([head.packed.bias for head in packed])
        maps = F.conv2d(x, weight, bias, padding=packed[0].packed.padding)
        maps = iter(maps.split([head.packed.out_channels for head in packed], 1))
        return [head(x, next(maps) if head.packed is not None else None) for head in heads]
