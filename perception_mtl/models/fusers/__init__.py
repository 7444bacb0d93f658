"""Fusers: several modalities' BEV maps -> one BEV map."""

from .add_fuser import AddFuser
from .conv_fuser import ConvFuser

__all__ = ["AddFuser", "ConvFuser"]
