# UGCL camera calibration from a stereo pair (arXiv 2402.08437): shared ResNet-18 trunk, correlation
# + deep-feature fusion, 10 regressed parameters (fx, fy, u0, v0, baseline, disparity, tx, ty, tz,
# pitch) with the geometric losses (vanishing points of the world axes and the image of the world
# origin from P = K [R | t], exact; the rows of P as world planes; R R^T = I and det R = 1 on the
# predicted rotation).
# Data first (about 2 minutes on 2 cores):
#   python tools/create_data.py cvgl --out-dir data/synthetic_cvgl
# then: python tools/train.py configs/ugcl_calib.py
#       python tools/test.py configs/ugcl_calib.py work_dirs/ugcl_calib/epoch_60.pth
# Metrics: calib/<param> MAE over the test split (pixels, metres; pitch in degrees), calib/fx_pct.
_base_ = [
    "_base_/datasets/synthetic_cvgl.py",
    "_base_/models/ugcl_stereo_resnet18.py",
    "_base_/schedules/ugcl_adam_cosine_60e.py",
    "_base_/default_runtime.py",
]

default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=10))
