"""perception_mtl: multi-task, multi-modal perception models on MMEngine."""

from .engine.safe_checkpoint import enable_safe_mmengine_checkpoints

__version__ = "0.1.0"

# Resume and test load MMEngine checkpoints through torch's safe unpickler (see safe_checkpoint).
enable_safe_mmengine_checkpoints()
