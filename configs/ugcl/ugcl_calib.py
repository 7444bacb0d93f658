# UGCL camera calibration from a stereo pair (arXiv 2402.08437): shared ResNet-18 trunk, correlation +
# deep-feature fusion, 10 regressed parameters (fx, fy, u0, v0, baseline, disparity, tx, ty, tz, pitch)
# with the geometric losses of P = K [R | t]. Data: create_data.py cvgl. Results: configs/ugcl/README.md.
_base_ = [
    "../_base_/datasets/synthetic_cvgl.py",
    "../_base_/models/ugcl_stereo_resnet18.py",
    "../_base_/schedules/ugcl_adam_cosine_60e.py",
    "../_base_/default_runtime.py",
]

default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=10))
