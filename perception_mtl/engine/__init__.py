from .safe_checkpoint import MMENGINE_CHECKPOINT_GLOBALS, enable_safe_mmengine_checkpoints

__all__ = ["MMENGINE_CHECKPOINT_GLOBALS", "enable_safe_mmengine_checkpoints"]
