"""gradient balancing (FULLER and the task-weighting family), wired into MMEngine's training
step as optim wrappers. Not camera balancing: camera geometry lives in ``perception_mtl.structures``."""

from .cagrad import CAGrad
from .dwa import DWA
from .equal_weighting import EqualWeighting
from .fuller import FULLER
from .grad_balance_amp_optim_wrapper import GradBalanceAmpOptimWrapper
from .grad_balance_optim_wrapper import CONTRACT_METHODS, GradBalanceOptimWrapper, check_grad_balance_contract
from .grad_norm import GradNorm
from .imtl_g import IMTLG
from .mgda import MGDA
from .min_norm_solver import min_norm_weights
from .modality_grad_balancer import ModalityGradBalancer
from .nash_mtl import NashMTL
from .pcgrad import PCGrad
from .shared_features import ModalityHook, SharedFeatures
from .task_weighting import Combination, TaskWeighting
from .uncertainty_weighting import UncertaintyWeighting

__all__ = [
    "CAGrad",
    "CONTRACT_METHODS",
    "GradBalanceAmpOptimWrapper",
    "GradBalanceOptimWrapper",
    "Combination",
    "DWA",
    "EqualWeighting",
    "FULLER",
    "GradNorm",
    "IMTLG",
    "MGDA",
    "ModalityGradBalancer",
    "ModalityHook",
    "NashMTL",
    "PCGrad",
    "SharedFeatures",
    "TaskWeighting",
    "UncertaintyWeighting",
    "check_grad_balance_contract",
    "min_norm_weights",
]
