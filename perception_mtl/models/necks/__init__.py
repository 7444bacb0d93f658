"""Necks: multi-scale feature fusion between backbones and view transforms / heads."""

from .fpn_ssh import FPNSSH
from .lss_fpn import LSSFPN
from .moe_bev_decoder import MoEBEVDecoder
from .task_channel_scaling import TaskChannelScaling

__all__ = ["LSSFPN"]
__all__ += ["FPNSSH"]
__all__ += ["TaskChannelScaling"]
__all__ += ["MoEBEVDecoder"]
