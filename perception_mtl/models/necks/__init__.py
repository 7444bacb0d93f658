"""Necks: multi-scale feature fusion between backbones and view transforms / heads."""

from .lss_fpn import LSSFPN

__all__ = ["LSSFPN"]
