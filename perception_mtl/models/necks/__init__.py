"""Necks: multi-scale feature fusion between backbones and view transforms / heads."""

from .fpn_ssh import FPNSSH
from .lss_fpn import LSSFPN

__all__ = ["LSSFPN"]
__all__ += ["FPNSSH"]
