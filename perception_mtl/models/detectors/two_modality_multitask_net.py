"""A small camera + LiDAR, detection + map BEV model that follows the gradient-balancing contract."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModel, ModuleDict
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from perception_mtl.grad_balance import ModalityHook, SharedFeatures
from perception_mtl.registry import MODELS


def _single_map(out: Tensor | Sequence[Tensor], stage: str) -> Tensor:
    """The one map of a module that returns a tuple or list of maps (mmdet3d's SECOND, SECONDFPN)."""
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise ValueError(f"TwoModalityMultiTaskNet: {stage} returned {len(out)} maps, expected one")
        out = out[0]
    return out


@MODELS.register_module()
class TwoModalityMultiTaskNet(BaseModel):
    """Per-modality BEV-raster encoders -> fuser -> shared decoder -> one head per task.

    The stages of DESIGN §2 and BEVFusion, each a registered module built from config:
    ``encoders[modality]``, ``fuser`` (None for a single modality), ``decoder`` (``backbone`` and an
    optional ``neck``, mmdet3d's SECOND + SECONDFPN in the configs; its output is the shared feature)
    and ``heads[task]``. Unlike ``MultiTaskBEVModel``, whose encoders lift images and voxelise
    points, the inputs here are already BEV rasters on one grid (``TwoModalityBEVDataset``), so an
    encoder is a plain 2D conv stack. It is the model gradient balancing (``perception_mtl.grad_balance``)
    is proven and benchmarked on.

    Gradient-balancing contract: ``extract_shared`` returns the decoder output (the last shared
    layer) and the modality features entering the fuser, passed through ``modality_hook``;
    ``loss_by_shared`` runs the heads on the shared feature alone. Losses are namespaced by task,
    e.g. ``det.loss_heatmap``, ``det.loss_offset``, ``map.loss_bce``.

    BEV maps are (B, C, H, W) with x along columns and y along rows, centred on the ego sensor.

    Args:
        encoders: ``{modality: encoder cfg}``; the names are the keys of ``inputs`` and the order
            is the fuser's input order. An encoder maps (B, C_m, H, W) to one (B, C'_m, H, W) map
            (or a one-map tuple, as SECOND returns).
        decoder: ``{'backbone': cfg, 'neck': cfg or None}``; the neck must merge the backbone's
            scales into one map.
        heads: ``{task: head cfg}``; a head offers ``loss(feat, samples)`` and ``predict(feat, samples)``.
            Only the tasks in ``tasks`` are built.
        tasks: tasks to train and predict.
        fuser: fuser config (e.g. ``ConvFuser``); required with several modalities, not allowed with one.
        data_preprocessor: MMEngine data preprocessor config.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        encoders: dict,
        decoder: dict,
        heads: dict,
        tasks: Sequence[str] = ("det", "map"),
        fuser: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.modalities = tuple(m for m, cfg in encoders.items() if cfg)
        if not self.modalities:
            raise ValueError("TwoModalityMultiTaskNet: model.encoders must configure at least one modality")
        if len(self.modalities) > 1 and fuser is None:
            raise ValueError(f"TwoModalityMultiTaskNet: model.fuser is required to combine {list(self.modalities)}")
        if len(self.modalities) == 1 and fuser is not None:
            raise ValueError(
                f"TwoModalityMultiTaskNet: model.fuser must be None with one modality ({self.modalities[0]})"
            )
        if not decoder.get("backbone"):
            raise ValueError("TwoModalityMultiTaskNet: model.decoder.backbone is required")
        self.tasks = tuple(tasks)
        missing = [t for t in self.tasks if not heads.get(t)]
        if not self.tasks or missing:
            raise ValueError(
                f"TwoModalityMultiTaskNet: model.tasks {list(self.tasks)} need a head each; "
                f"model.heads has none for {missing}"
            )
        self.encoders = ModuleDict({m: MODELS.build(encoders[m]) for m in self.modalities})
        self.fuser = MODELS.build(fuser) if fuser is not None else None
        self.decoder = ModuleDict({"backbone": MODELS.build(decoder["backbone"])})
        if decoder.get("neck"):
            self.decoder["neck"] = MODELS.build(decoder["neck"])
        self.heads = ModuleDict({t: MODELS.build(heads[t]) for t in self.tasks})

    def init_weights(self) -> None:
        """The parts' own initialisation, then PyTorch's default init for the encoders' and decoder's convs.

        mmdet3d's SECOND and mmcv's ConvModule initialise convs with Kaiming (fan_out, normal): weights
        sqrt(6 C_in / C_out) times the spread of PyTorch's default. A norm after each conv makes those
        layers scale-invariant, so under AdamW larger weights learn more slowly, and in the 4-epoch
        schedule of configs/grad_balance/ FULLER's detection mAP falls by about 0.08 (mean over seeds).
        The fuser and the heads keep their own initialisation (zeroed fuser inputs, the heatmap prior).
        """
        super().init_weights()
        for part in (self.encoders, self.decoder):
            for module in part.modules():
                if isinstance(module, nn.Conv2d):
                    module.reset_parameters()

    # ------------------------------------------------------------------ stages

    def encode(self, inputs: dict[str, Tensor | list[Tensor]]) -> dict[str, Tensor]:
        """``{modality: (B, C_m, H, W) or list of (C_m, H, W)}`` -> ``{modality: (B, C'_m, H, W)}``."""
        return {
            m: _single_map(self.encoders[m](self._modality_input(inputs, m)), f"encoders.{m}") for m in self.modalities
        }

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        """``{modality: (B, C_m, H, W)}`` -> (B, C, H, W); the single map itself without a fuser."""
        if self.fuser is None:
            return feats[self.modalities[0]]
        return self.fuser([feats[m] for m in self.modalities])

    def bev_decode(self, bev: Tensor) -> Tensor:
        """Fused BEV (B, C, H, W) -> shared feature (B, C', H, W) (SECONDFPN concatenates its scales)."""
        out = self.decoder["backbone"](bev)
        if "neck" in self.decoder:
            out = self.decoder["neck"](out)
        return _single_map(out, "decoder")

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
            modality_hook: applied to the encoder outputs ``{modality: (B, C'_m, H, W)}`` before the fuser.

        Returns:
            ``SharedFeatures`` with ``feat`` the decoder output (B, C, H, W) and the modality features.
        """
        feats = self.encode(inputs)
        if modality_hook is not None:
            feats = modality_hook(feats)
        return SharedFeatures(feat=self.bev_decode(self.fuse(feats)), modality_feats=feats)

    def loss_by_shared(self, shared_feat: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Args: shared_feat (B, C, H, W); data_samples with each task's ground truth. Returns the
        task-namespaced losses."""
        if data_samples is None:
            raise ValueError("TwoModalityMultiTaskNet: mode='loss' needs data_samples with the tasks' ground truth")
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
        loss dict; 'predict' the samples with each head's predictions (``pred_centers`` /
        ``pred_scores``, ``pred_bev_seg``)."""
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
