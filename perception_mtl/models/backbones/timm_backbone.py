"""Any timm model as a multi-scale backbone (``features_only=True``), NCHW outputs."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import timm
import torch
from mmengine.model import BaseModule
from torch import Tensor

from perception_mtl.registry import MODELS


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """Wraps ``timm.create_model(model_name, features_only=True, out_indices=...)``.

    Works for every timm family with feature extraction (ResNet, ConvNeXt, EfficientNet, Swin,
    ...); channel-last outputs (Swin) are permuted to NCHW so necks see one layout. Nothing is
    downloaded: weights come only from ``checkpoint``, a local file.

    Args:
        model_name: timm model name, e.g. ``'resnet50'``, ``'swin_tiny_patch4_window7_224'``.
        out_indices: which feature levels to return (timm's stage indices).
        checkpoint: local path of a state dict (or a dict holding ``state_dict`` / ``model``)
            for the full timm model; keys of the classifier are ignored.
        checkpoint_prefix: prefix stripped from the checkpoint keys (e.g. ``'backbone.'``).
        frozen_stages: feature levels (by index into the returned list) whose parameters are
            frozen, counted from the stem; -1 freezes nothing.
        **model_kwargs: passed to ``timm.create_model`` (e.g. ``img_size=(256, 704)`` for Swin,
            ``drop_path_rate``).

    Attributes:
        out_channels: channels of each returned level.
        strides: reduction of each returned level relative to the input.
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (1, 2, 3),
        checkpoint: str | None = None,
        checkpoint_prefix: str = "",
        frozen_stages: int = -1,
        init_cfg: dict | None = None,
        **model_kwargs,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if "pretrained" in model_kwargs:
            raise ValueError(
                "TimmBackbone: 'pretrained' is not allowed (no downloads); set 'checkpoint' to a local file"
            )
        try:
            self.model = timm.create_model(
                model_name, pretrained=False, features_only=True, out_indices=tuple(out_indices), **model_kwargs
            )
        except RuntimeError as err:
            raise ValueError(f"TimmBackbone: timm cannot build model_name={model_name!r}: {err}") from err
        self.out_channels: list[int] = list(self.model.feature_info.channels())
        self.strides: list[int] = list(self.model.feature_info.reduction())
        self.channels_last = str(getattr(self.model, "output_fmt", "NCHW")).endswith("NHWC")
        if checkpoint is not None:
            self.load_local_checkpoint(checkpoint, checkpoint_prefix)
        self.frozen_stages = frozen_stages
        self._freeze()

    def load_local_checkpoint(self, path: str, prefix: str = "") -> None:
        """Loads timm weights from a local file; raises if none of its keys fit the model."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"TimmBackbone: checkpoint file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        # features_only models keep the original module names, minus the classifier.
        own = self.model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise ValueError(f"TimmBackbone: no key of checkpoint {path} matches the timm model (prefix {prefix!r})")
        missing = sorted(set(own) - set(usable))
        if missing:
            warnings.warn(f"TimmBackbone: {len(missing)} parameters not in {path}, e.g. {missing[:3]}", stacklevel=2)
        self.model.load_state_dict(usable, strict=False)

    def _freeze(self) -> None:
        if self.frozen_stages < 0:
            return
        # Modules in forward order; freeze everything up to the end of the requested level.
        levels = self.model.feature_info.module_name()
        last = levels[min(self.frozen_stages, len(levels) - 1)].replace(".", "_")
        for name, module in self.model.named_children():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
            if name == last:
                break

    def train(self, mode: bool = True) -> TimmBackbone:
        super().train(mode)
        self._freeze()
        return self

    def forward(self, images: Tensor) -> list[Tensor]:
        """Args: images (B, 3, H, W). Returns one (B, C_i, H / s_i, W / s_i) map per ``out_indices``."""
        feats = self.model(images)
        if self.channels_last:
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return list(feats)
