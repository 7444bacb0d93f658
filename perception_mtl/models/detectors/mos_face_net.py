"""MOS (Liu et al., BMVC 2021): one low-latency network for face detection, 5 landmarks and head pose."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from perception_mtl.grad_balance.uncertainty_weighting import UncertaintyWeighting
from perception_mtl.registry import MODELS

from ..moe.moe_utils import moe_layers, pop_moe_aux_loss

TASKS = ("face", "landmark", "pose")


def backbone_channels(backbone) -> list[int]:
    """Channels of each backbone level, from timm's ``feature_info`` or ``TimmBackbone.out_channels``."""
    if hasattr(backbone, "feature_info"):
        return list(backbone.feature_info.channels())
    return list(backbone.out_channels)


@MODELS.register_module()
class MOSFaceNet(BaseModel):
    """Backbone (strides 8/16/32) -> FPN + SSH neck -> :class:`FacePoseHead` (cross-stitched task branches).

    Tasks and their losses: ``face`` (``face.loss_cls``, ``face.loss_bbox``), ``landmark``
    (``landmark.loss``) and ``pose`` (``pose.loss_cls``, ``pose.loss_reg``). With
    ``uncertainty_weighting`` the three task losses are combined as Kendall et al.'s
    ``sum_t exp(-s_t) L_t + s_t`` with learned log-variances ``s_t``: the model reuses
    :class:`perception_mtl.grad_balance.UncertaintyWeighting` as a sub-module (``task_weighting.log_vars``, a
    model parameter the optimizer updates), scales each task's losses by the detached
    ``exp(-s_t)`` and adds the rule's objective on the detached task losses as
    ``uncertainty.loss`` (so ``s_t`` tends to ``log L_t``). The weights are logged as
    ``<task>.weight``. It is the model-internal form of the balancing rule, so the plain
    ``OptimWrapper`` trains it (no shared-feature hooks needed).

    The ViT-MoE backbone is allowed when its MoE layers do not route by task (one forward serves
    all tasks); its balance loss is added as ``moe.loss_balance``.

    Args:
        backbone: backbone config (``TimmBackbone`` with ``model_name='mobilenetv2_100'`` and
            ``out_indices=(2, 3, 4)`` for MOS-M, or ``ViTMoE``).
        neck: ``FPNSSH`` config; ``in_channels`` is filled from the backbone.
        head: ``FacePoseHead`` config; ``in_channels`` is filled from the neck.
        uncertainty_weighting: learn the task weights (else every task has weight 1).
        init_log_vars: initial ``s_t`` for (face, landmark, pose).
        moe_loss_weight: factor on a ViT-MoE backbone's balance loss.
        data_preprocessor: MMEngine data preprocessor config.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        head: dict,
        uncertainty_weighting: bool = True,
        init_log_vars: Sequence[float] = (0.0, 0.0, 0.0),
        moe_loss_weight: float = 0.01,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if any(layer.router.task_dependent for _, layer in moe_layers(self.backbone)):
            raise ValueError("MOSFaceNet: the backbone's MoE layers route by task; use a task-agnostic router")
        neck = dict(neck)
        neck.setdefault("in_channels", backbone_channels(self.backbone))
        self.neck = MODELS.build(neck)
        head = dict(head)
        head.setdefault("in_channels", self.neck.out_channels)
        head.setdefault("num_levels", len(self.neck.in_channels))
        self.head = MODELS.build(head)
        self.task_weighting = (
            UncertaintyWeighting(num_tasks=len(TASKS), init_log_var=list(init_log_vars))
            if uncertainty_weighting
            else None
        )
        self.moe_loss_weight = float(moe_loss_weight)

    # ----------------------------------------------------------------------------- export boundaries
    def extract_feats(self, img: Tensor) -> list[Tensor]:
        """Normalised images (B, 3, H, W) -> neck maps (B, C, H / s, W / s) for s = 8, 16, 32."""
        return self.neck(self.backbone(img))

    def head_forward(self, img: Tensor) -> dict[str, Tensor]:
        """Normalised images -> raw head outputs over all priors (see ``FacePoseHead.forward``)."""
        return self.head(self.extract_feats(img))

    # ----------------------------------------------------------------------------- MMEngine contract
    def forward(
        self,
        inputs: Tensor | Sequence[Tensor],
        data_samples: Sequence[BaseDataElement] | None = None,
        mode: str = "tensor",
    ) -> dict[str, Tensor] | Sequence[BaseDataElement]:
        """Args: inputs (B, 3, H, W) normalised images. Returns per ``mode``: 'tensor' the raw head
        outputs; 'loss' the loss dict; 'predict' the samples with ``pred_instances``."""
        img = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
        img = img.float()
        if mode == "tensor":
            return self.head_forward(img)
        if mode == "loss":
            if data_samples is None:
                raise ValueError("MOSFaceNet: mode='loss' needs data_samples with gt_instances")
            return self.loss(img, data_samples)
        if mode == "predict":
            samples = data_samples if data_samples is not None else [BaseDataElement() for _ in range(len(img))]
            feats = self.extract_feats(img)
            pop_moe_aux_loss(self.backbone)
            return self.head.predict(feats, samples, tuple(img.shape[-2:]))
        raise ValueError(f"MOSFaceNet: unknown mode {mode!r} (expected 'tensor', 'loss' or 'predict')")

    def loss(self, img: Tensor, data_samples: Sequence[BaseDataElement]) -> dict[str, Tensor]:
        """Task losses (weighted when uncertainty weighting is on), ``uncertainty.loss`` and ``moe.loss_balance``."""
        pop_moe_aux_loss(self.backbone)
        losses = self.head.loss(self.extract_feats(img), data_samples, tuple(img.shape[-2:]))
        if self.task_weighting is not None:
            task_losses = torch.stack([sum(v for k, v in losses.items() if k.startswith(f"{t}.")) for t in TASKS])
            weights, objective = self.task_weighting(None, task_losses.detach())
            weights = weights.to(task_losses)
            for key in list(losses):
                losses[key] = losses[key] * weights[TASKS.index(key.split(".")[0])]
            losses["uncertainty.loss"] = objective
            for t, w in zip(TASKS, weights):
                losses[f"{t}.weight"] = w
        aux = pop_moe_aux_loss(self.backbone)
        if aux is not None:
            losses["moe.loss_balance"] = aux * self.moe_loss_weight
        return losses
