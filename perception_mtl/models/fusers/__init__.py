"""Fusers: several modalities' BEV maps -> one BEV map."""

from .add_fuser import AddFuser
from .conv_fuser import ConvFuser
from .mafi_fuser import MAFIFuser

__all__ = ["AddFuser", "ConvFuser"]
__all__ += ["MAFIFuser"]
