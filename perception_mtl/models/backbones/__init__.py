"""Backbones: image backbones with timm's interface (feature_info, features_only-style multi-scale
output) and BEV-map backbones."""

from .timm_backbone import TimmBackbone
from .two_scale_bev_backbone import TwoScaleBEVBackbone
from .vit_moe import ViTMoE

__all__ = ["ViTMoE"]
__all__ += ["TimmBackbone"]
__all__ += ["TwoScaleBEVBackbone"]
