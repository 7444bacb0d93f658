"""Task-conditioned mixture-of-experts (M³ViT): MoE layer, routers, balance loss, sparse task extraction."""

from .balance_loss import cv_squared, load_balancing_loss
from .expert_bank import ExpertBank
from .extract_task_model import extract_task_model, measure_expert_usage
from .moe_feed_forward import MoEFeedForward
from .moe_stats_hook import MoEStatsHook
from .moe_transformer_stage import MoETransformerStage
from .moe_utils import (
    expert_load_table,
    moe_layers,
    pop_moe_aux_loss,
    read_moe_stats,
    reset_moe_stats,
    routing_task,
    set_moe_dispatch,
    summarize_moe_stats,
    track_moe_stats,
)
from .noisy_top_k_gate import NoisyTopKGate, RoutingOutput
from .per_task_router import PerTaskRouter
from .task_conditioned_router import TaskConditionedRouter
from .transformer_block import TransformerBlock

__all__ = [
    "ExpertBank",
    "MoEFeedForward",
    "MoEStatsHook",
    "MoETransformerStage",
    "NoisyTopKGate",
    "PerTaskRouter",
    "RoutingOutput",
    "TaskConditionedRouter",
    "TransformerBlock",
    "cv_squared",
    "expert_load_table",
    "extract_task_model",
    "load_balancing_loss",
    "measure_expert_usage",
    "moe_layers",
    "pop_moe_aux_loss",
    "read_moe_stats",
    "reset_moe_stats",
    "routing_task",
    "set_moe_dispatch",
    "summarize_moe_stats",
    "track_moe_stats",
]
