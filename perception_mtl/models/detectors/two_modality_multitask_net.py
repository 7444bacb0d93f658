"""A small camera + LiDAR, detection + map BEV model that follows the gradient-balancing contract.

Stages as in DESIGN §2 and BEVFusion: ``encoders[modality]`` -> ``fuser`` -> ``decoder`` (its
output is the shared feature) -> ``heads[task]``. It is the model gradient balancing
(``perception_mtl.grad_balance``) is proven and benchmarked on, trained on ``TwoModalityBEVDataset``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.grad_balance import ModalityHook, SharedFeatures
from perception_mtl.registry import MODELS

NORMS = ("BN", "GN", None)
TASKS = ("det", "map")


def _conv(cin: int, cout: int, norm: str | None, stride: int = 1) -> nn.Sequential:
    """3x3 conv + norm + ReLU. GN (4 groups) keeps samples independent, e.g. for DDP parity tests."""
    if norm == "BN":
        layer = nn.BatchNorm2d(cout)
    elif norm == "GN":
        layer = nn.GroupNorm(4, cout)
    else:
        layer = nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=norm is None), layer, nn.ReLU(inplace=True))


class _ConvFuser(nn.Module):
    """BEVFusion's fuser: concatenate the modality BEV features, then a 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, norm)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats, each (B, C_m, H, W). Returns (B, out_channels, H, W)."""
        return self.conv(torch.cat(list(feats), 1))


class _BEVDecoder(nn.Module):
    """Two-scale decoder: a stride-2 branch for context, upsampled and merged at full resolution."""

    def __init__(self, in_channels: int, channels: int, norm: str | None) -> None:
        super().__init__()
        self.down = nn.Sequential(
            _conv(in_channels, 2 * channels, norm, stride=2), _conv(2 * channels, 2 * channels, norm)
        )
        self.merge = _conv(in_channels + 2 * channels, channels, norm)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (B, C_in, H, W) with even H, W. Returns the shared feature (B, channels, H, W)."""
        up = F.interpolate(self.down(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge(torch.cat([x, up], 1))


class _CenterHead(nn.Module):
    """CenterNet-style head: a car-centre heatmap and the sub-cell offset of each centre.

    Args:
        in_channels: channels of the shared feature.
        cell_m: BEV cell size in metres.
        sigma: Gaussian radius of the heatmap target, in cells.
        max_detections: peaks kept per sample at inference.
        score_threshold: peaks below this score are dropped at inference.
    """

    def __init__(self, in_channels: int, cell_m: float, sigma: float, max_detections: int, score_threshold: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, in_channels // 2, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(in_channels // 2, 3, 1)
        nn.init.constant_(self.out.bias[:1], -2.19)  # CenterNet's prior: sigmoid(-2.19) = 0.1
        self.cell_m, self.sigma = cell_m, sigma
        self.max_detections, self.score_threshold = max_detections, score_threshold

    def forward(self, feat: Tensor) -> Tensor:
        """Args: feat (B, C, H, W). Returns (B, 3, H, W): heatmap logit, offset x, offset y (cells)."""
        return self.out(self.body(feat))

    def targets(self, centers: list[Tensor], shape: tuple[int, int], device) -> tuple[Tensor, Tensor, Tensor]:
        """Heatmap (B, 1, H, W), offsets (B, 2, H, W) and the centre-cell mask (B, 1, H, W)."""
        h, w = shape
        heat = torch.zeros(len(centers), 1, h, w, device=device)
        offset = torch.zeros(len(centers), 2, h, w, device=device)
        mask = torch.zeros(len(centers), 1, h, w, device=device)
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        for b, c in enumerate(centers):
            cells = c.to(device).float() / self.cell_m + torch.tensor([w / 2, h / 2], device=device)  # (N, 2) x, y
            for cx, cy in cells:
                ix, iy = int(cx.clamp(0, w - 1)), int(cy.clamp(0, h - 1))
                g = torch.exp(-((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2) / (2 * self.sigma**2))
                heat[b, 0] = torch.maximum(heat[b, 0], g)
                heat[b, 0, iy, ix] = 1.0
                offset[b, :, iy, ix] = torch.stack([cx - ix, cy - iy])
                mask[b, 0, iy, ix] = 1.0
        return heat, offset, mask

    def loss(self, feat: Tensor, samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Gaussian focal loss on the heatmap and L1 on the centre offsets, per positive."""
        out = self(feat).float()
        heat, offset, mask = self.targets([s.gt_centers for s in samples], out.shape[-2:], out.device)
        prob = out[:, :1].sigmoid().clamp(1e-4, 1 - 1e-4)
        pos = heat.eq(1).float()
        num_pos = pos.sum().clamp_min(1.0)
        pos_loss = -(torch.log(prob) * (1 - prob) ** 2 * pos).sum()
        neg_loss = -(torch.log(1 - prob) * prob**2 * (1 - heat) ** 4 * (1 - pos)).sum()
        offset_loss = (F.l1_loss(out[:, 1:], offset, reduction="none") * mask).sum() / num_pos
        return {"loss_heatmap": (pos_loss + neg_loss) / num_pos, "loss_offset": offset_loss}

    @torch.no_grad()
    def predict(self, feat: Tensor, samples: Sequence[BaseDataElement]) -> None:
        """Writes ``pred_centers`` (K, 2) metres and ``pred_scores`` (K,) into each sample."""
        out = self(feat).float()
        prob = out[:, 0].sigmoid()
        peaks = prob * (F.max_pool2d(prob[:, None], 3, 1, 1)[:, 0] == prob)
        h, w = prob.shape[-2:]
        k = min(self.max_detections, h * w)
        scores, idx = peaks.flatten(1).topk(k, dim=1)
        for b, sample in enumerate(samples):
            keep = scores[b] >= self.score_threshold
            iy, ix = idx[b][keep] // w, idx[b][keep] % w
            cx = ix.float() + out[b, 1, iy, ix]
            cy = iy.float() + out[b, 2, iy, ix]
            sample.pred_centers = (torch.stack([cx - w / 2, cy - h / 2], 1) * self.cell_m).cpu()
            sample.pred_scores = scores[b][keep].cpu()


class _MapHead(nn.Module):
    """BEV map segmentation: per-class logits, per-class BCE with a foreground weight."""

    def __init__(self, in_channels: int, num_classes: int, pos_weight: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, in_channels // 2, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(in_channels // 2, num_classes, 1)
        self.register_buffer("pos_weight", torch.full((num_classes, 1, 1), float(pos_weight)), persistent=False)

    def forward(self, feat: Tensor) -> Tensor:
        """Args: feat (B, C, H, W). Returns logits (B, K, H, W)."""
        return self.out(self.body(feat))

    def loss(self, feat: Tensor, samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        logits = self(feat).float()
        target = torch.stack([s.gt_bev_seg for s in samples]).to(logits)
        return {"loss_bce": F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)}

    @torch.no_grad()
    def predict(self, feat: Tensor, samples: Sequence[BaseDataElement]) -> None:
        """Writes ``pred_bev_seg`` (K, H, W) probabilities into each sample."""
        for sample, prob in zip(samples, self(feat).float().sigmoid()):
            sample.pred_bev_seg = prob.cpu()


@MODELS.register_module()
class TwoModalityMultiTaskNet(BaseModel):
    """Camera and LiDAR BEV encoders, a conv fuser, a shared decoder, detection and map heads.

    Implements the gradient-balancing contract (``perception_mtl.grad_balance``): ``extract_shared``
    returns the decoder output (the last shared layer) and the modality features entering the
    fuser, passed through ``modality_hook``; ``loss_by_shared`` runs the heads on the shared
    feature alone. Losses are namespaced: ``det.loss_heatmap``, ``det.loss_offset``,
    ``map.loss_bce``.

    Args:
        modalities: input modalities, a subset of ``in_channels``; with one there is no fuser.
        tasks: heads to build, a subset of ('det', 'map').
        in_channels: channels per modality input, default camera 3, lidar 2.
        branch_channels: width of each modality encoder.
        shared_channels: width of the fused and shared features.
        num_map_classes: map classes (drivable area, walkway).
        cell_m: BEV cell size in metres (for centre decoding).
        norm: 'BN', 'GN' or None in the encoders, fuser and decoder.
        heatmap_sigma: detection heatmap radius in cells.
        max_detections: centre peaks kept per sample.
        score_threshold: minimum centre score kept at inference.
        map_pos_weight: BCE weight of map foreground cells.
        data_preprocessor: MMEngine data preprocessor config.
    """

    def __init__(
        self,
        modalities: Sequence[str] = ("camera", "lidar"),
        tasks: Sequence[str] = TASKS,
        in_channels: dict[str, int] | None = None,
        branch_channels: int = 16,
        shared_channels: int = 32,
        num_map_classes: int = 2,
        cell_m: float = 0.5,
        norm: str | None = "BN",
        heatmap_sigma: float = 1.5,
        max_detections: int = 20,
        score_threshold: float = 0.05,
        map_pos_weight: float = 2.0,
        data_preprocessor: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        in_channels = dict(in_channels or {"camera": 3, "lidar": 2})
        self.modalities, self.tasks = tuple(modalities), tuple(tasks)
        unknown = [m for m in self.modalities if m not in in_channels]
        if not self.modalities or unknown:
            raise ValueError(
                f"TwoModalityMultiTaskNet: model.modalities {self.modalities} need model.in_channels for {unknown}"
            )
        if not self.tasks or set(self.tasks) - set(TASKS):
            raise ValueError(f"TwoModalityMultiTaskNet: model.tasks must be a non-empty subset of {TASKS}, got {tasks}")
        if norm not in NORMS:
            raise ValueError(f"TwoModalityMultiTaskNet: model.norm must be one of {NORMS}, got {norm!r}")
        if shared_channels % 8 or branch_channels % 4:
            raise ValueError("TwoModalityMultiTaskNet: shared_channels must be a multiple of 8, branch_channels of 4")
        self.encoders = nn.ModuleDict(
            {
                m: nn.Sequential(
                    _conv(in_channels[m], branch_channels, norm), _conv(branch_channels, branch_channels, norm)
                )
                for m in self.modalities
            }
        )
        fused = branch_channels
        self.fuser = None
        if len(self.modalities) > 1:
            self.fuser = _ConvFuser(branch_channels * len(self.modalities), shared_channels, norm)
            fused = shared_channels
        self.decoder = _BEVDecoder(fused, shared_channels, norm)
        heads = {
            "det": lambda: _CenterHead(shared_channels, cell_m, heatmap_sigma, max_detections, score_threshold),
            "map": lambda: _MapHead(shared_channels, num_map_classes, map_pos_weight),
        }
        self.heads = nn.ModuleDict({t: heads[t]() for t in self.tasks})

    # ------------------------------------------------------------------ gradient-balancing contract

    def extract_shared(
        self,
        inputs: dict[str, Tensor | list[Tensor]],
        data_samples: Sequence[BaseDataElement] | None = None,
        modality_hook: ModalityHook | None = None,
    ) -> SharedFeatures:
        """Encoders, fuser and decoder.

        Args:
            inputs: per modality (B, C_m, H, W) or a list of (C_m, H, W).
            data_samples: unused (no shared-layer losses in this model).
            modality_hook: applied to ``{modality: (B, branch_channels, H, W)}`` before the fuser.

        Returns:
            ``SharedFeatures`` with ``feat`` (B, shared_channels, H, W) and the modality features.
        """
        feats = {m: self.encoders[m](self._modality_input(inputs, m)) for m in self.modalities}
        if modality_hook is not None:
            feats = modality_hook(feats)
        fused = self.fuser(list(feats.values())) if self.fuser is not None else feats[self.modalities[0]]
        return SharedFeatures(feat=self.decoder(fused), modality_feats=feats)

    def loss_by_shared(self, shared_feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Args: shared_feat (B, C, H, W); data_samples with gt_centers / gt_bev_seg. Returns
        the task-namespaced losses."""
        if data_samples is None:
            raise ValueError("TwoModalityMultiTaskNet: mode='loss' needs data_samples with gt_centers and gt_bev_seg")
        losses = {}
        for task, head in self.heads.items():
            losses.update({f"{task}.{k}": v for k, v in head.loss(shared_feat, data_samples).items()})
        return losses

    # ------------------------------------------------------------------ MMEngine model

    def forward(
        self,
        inputs: dict[str, Tensor | list[Tensor]],
        data_samples: list[BaseDataElement] | None = None,
        mode: str = "tensor",
    ) -> dict[str, Tensor] | list[BaseDataElement]:
        """Returns per ``mode``: 'tensor' the raw head outputs ``{task: (B, K_t, H, W)}``; 'loss' the
        loss dict; 'predict' the samples with ``pred_centers``/``pred_scores`` and ``pred_bev_seg``."""
        if mode not in ("tensor", "loss", "predict"):
            raise ValueError(f"TwoModalityMultiTaskNet: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")
        shared = self.extract_shared(inputs, data_samples)
        if mode == "loss":
            return {**self.loss_by_shared(shared.feat, data_samples), **shared.aux_losses}
        if mode == "tensor":
            return {task: head(shared.feat) for task, head in self.heads.items()}
        batch = shared.feat.shape[0]
        samples = data_samples if data_samples is not None else [BaseDataElement() for _ in range(batch)]
        for head in self.heads.values():
            head.predict(shared.feat, samples)
        return samples

    def _modality_input(self, inputs: dict, modality: str) -> Tensor:
        if modality not in inputs:
            raise KeyError(f"TwoModalityMultiTaskNet: inputs have no '{modality}' (got {sorted(inputs)})")
        x = inputs[modality]
        if isinstance(x, (list, tuple)):
            x = torch.stack(list(x))
        return x.float()
