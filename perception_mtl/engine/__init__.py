from .bfloat16_optim_wrapper import BFloat16OptimWrapper
from .hooks import (
    AtomicCheckpointHook,
    BadSampleReportHook,
    ChannelsLastHook,
    NonFiniteGuardHook,
    NonFiniteTrainingError,
    RNGStateHook,
    atomic_save_checkpoint,
    atomic_write,
    convert_conv_weights_to_channels_last,
    get_rng_state,
    set_rng_state,
)
from .safe_checkpoint import MMENGINE_CHECKPOINT_GLOBALS, enable_safe_mmengine_checkpoints

__all__ = [
    "AtomicCheckpointHook",
    "atomic_save_checkpoint",
    "atomic_write",
    "BadSampleReportHook",
    "BFloat16OptimWrapper",
    "MMENGINE_CHECKPOINT_GLOBALS",
    "ChannelsLastHook",
    "convert_conv_weights_to_channels_last",
    "enable_safe_mmengine_checkpoints",
    "NonFiniteGuardHook",
    "NonFiniteTrainingError",
    "RNGStateHook",
    "get_rng_state",
    "set_rng_state",
]
