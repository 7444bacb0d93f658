"""Training hooks (as ``mmdet3d.engine.hooks``): atomic checkpoints, RNG state in checkpoints, the non-finite
loss guard, the bad-sample report and channels-last conversion. Hooks that belong to one feature stay with it:
``VisualizationHook`` in ``perception_mtl.visualization``, ``MoEStatsHook`` in ``perception_mtl.models.moe``."""

from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_save_checkpoint, atomic_write
from .bad_sample_report_hook import BadSampleReportHook
from .channels_last_hook import ChannelsLastHook, convert_conv_weights_to_channels_last
from .non_finite_guard_hook import NonFiniteGuardHook, NonFiniteTrainingError
from .rng_state_hook import RNGStateHook, get_rng_state, set_rng_state

__all__ = [
    "AtomicCheckpointHook",
    "atomic_save_checkpoint",
    "atomic_write",
    "BadSampleReportHook",
    "ChannelsLastHook",
    "convert_conv_weights_to_channels_last",
    "NonFiniteGuardHook",
    "NonFiniteTrainingError",
    "RNGStateHook",
    "get_rng_state",
    "set_rng_state",
]
