"""perception_mtl: multi-task, multi-modal perception models on MMEngine."""

from .engine.registry_hints import enable_registry_hints
from .engine.safe_checkpoint import enable_safe_mmengine_checkpoints
from .engine.safe_pickle import enable_safe_pickle_loading

__version__ = "0.1.0"

# Resume and test load MMEngine checkpoints through torch's safe unpickler (see safe_checkpoint).
enable_safe_mmengine_checkpoints()
# Info files and object databases (mmengine.load of .pkl) go through a restricted unpickler.
enable_safe_pickle_loading()
# A misspelt registry type lists close matches (difflib).
enable_registry_hints()
