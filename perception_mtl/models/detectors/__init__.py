from .mos_face_net import MOSFaceNet
from .multi_task_bev_model import MultiTaskBEVModel
from .multitask_dense_predictor import MultiTaskDensePredictor
from .two_modality_multitask_net import TwoModalityMultiTaskNet
from .ugcl_stereo_net import UGCLStereoNet

__all__ = ["MultiTaskDensePredictor"]
__all__ += ["TwoModalityMultiTaskNet"]
__all__ += ["MultiTaskBEVModel"]
__all__ += ["MOSFaceNet"]
__all__ += ["UGCLStereoNet"]
