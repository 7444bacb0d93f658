"""Backbones with timm's interface (feature_info, features_only-style multi-scale output)."""

from .timm_backbone import TimmBackbone
from .vit_moe import ViTMoE

__all__ = ["ViTMoE"]
__all__ += ["TimmBackbone"]
