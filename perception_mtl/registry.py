"""Every registry of perception_mtl, as children of MMEngine's roots (scope ``perception_mtl``).

Each registry names the package ``locations`` that register into it, so a config with
``default_scope = 'perception_mtl'`` builds without manual imports. A name not found here falls
back to MMEngine's root (hooks, optimizers, schedulers, ...); modules of mmdet / mmdet3d are
reached with their scope prefix, e.g. ``type='mmdet3d.CenterHead'``.
"""

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = "perception_mtl"


def _child(name: str, parent: Registry, locations: list[str]) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=locations)


RUNNERS = _child("runner", MMENGINE_RUNNERS, ["perception_mtl.engine"])
RUNNER_CONSTRUCTORS = _child("runner constructor", MMENGINE_RUNNER_CONSTRUCTORS, ["perception_mtl.engine"])
LOOPS = _child("loop", MMENGINE_LOOPS, ["perception_mtl.engine"])
HOOKS = _child(
    "hook", MMENGINE_HOOKS, ["perception_mtl.engine", "perception_mtl.models", "perception_mtl.visualization"]
)  # + MoE stats hook, VisualizationHook
STRATEGIES = _child("strategy", MMENGINE_STRATEGIES, ["perception_mtl.engine"])
DATASETS = _child("dataset", MMENGINE_DATASETS, ["perception_mtl.datasets", "perception_mtl.synthetic"])
DATA_SAMPLERS = _child("data sampler", MMENGINE_DATA_SAMPLERS, ["perception_mtl.datasets"])
TRANSFORMS = _child("transform", MMENGINE_TRANSFORMS, ["perception_mtl.datasets"])
MODELS = _child("model", MMENGINE_MODELS, ["perception_mtl.models", "perception_mtl.heads"])
MODEL_WRAPPERS = _child("model_wrapper", MMENGINE_MODEL_WRAPPERS, ["perception_mtl.models"])
WEIGHT_INITIALIZERS = _child("weight initializer", MMENGINE_WEIGHT_INITIALIZERS, ["perception_mtl.models"])
OPTIMIZERS = _child("optimizer", MMENGINE_OPTIMIZERS, ["perception_mtl.grad_balance"])
# Gradient balancing (FULLER and the task-weighting family) plugs in as optim wrappers.
OPTIM_WRAPPERS = _child(
    "optim_wrapper", MMENGINE_OPTIM_WRAPPERS, ["perception_mtl.grad_balance", "perception_mtl.engine"]
)
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    "optimizer wrapper constructor", MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, ["perception_mtl.grad_balance"]
)
PARAM_SCHEDULERS = _child("parameter scheduler", MMENGINE_PARAM_SCHEDULERS, ["perception_mtl.engine"])
METRICS = _child("metric", MMENGINE_METRICS, ["perception_mtl.evaluation"])
EVALUATOR = _child("evaluator", MMENGINE_EVALUATOR, ["perception_mtl.evaluation"])
TASK_UTILS = _child(
    "task util", MMENGINE_TASK_UTILS, ["perception_mtl.models", "perception_mtl.heads", "perception_mtl.grad_balance"]
)
VISUALIZERS = _child("visualizer", MMENGINE_VISUALIZERS, ["perception_mtl.engine"])
VISBACKENDS = _child("vis_backend", MMENGINE_VISBACKENDS, ["perception_mtl.engine"])
LOG_PROCESSORS = _child("log_processor", MMENGINE_LOG_PROCESSORS, ["perception_mtl.engine"])
INFERENCERS = _child("inferencer", MMENGINE_INFERENCERS, ["perception_mtl.apis"])
FUNCTIONS = _child("function", MMENGINE_FUNCTIONS, ["perception_mtl.datasets"])

ALL_REGISTRIES: dict[str, Registry] = {
    r.name: r
    for r in (
        RUNNERS,
        RUNNER_CONSTRUCTORS,
        LOOPS,
        HOOKS,
        STRATEGIES,
        DATASETS,
        DATA_SAMPLERS,
        TRANSFORMS,
        MODELS,
        MODEL_WRAPPERS,
        WEIGHT_INITIALIZERS,
        OPTIMIZERS,
        OPTIM_WRAPPERS,
        OPTIM_WRAPPER_CONSTRUCTORS,
        PARAM_SCHEDULERS,
        METRICS,
        EVALUATOR,
        TASK_UTILS,
        VISUALIZERS,
        VISBACKENDS,
        LOG_PROCESSORS,
        INFERENCERS,
        FUNCTIONS,
    )
}
