# UGCL stereo calibration network: a shared (Siamese) timm trunk, a horizontal correlation volume at
# stride 4, fusion with the deepest features, and the calibration head with the geometric losses.
# param_stats: mean / std of each target over the synthetic training split (meta.json "train_stats"
# of data/synthetic_cvgl; pixels, metres, radians): targets are regressed as (p - mean) / std.
param_stats = dict(
    fx=(102.6, 17.4),
    fy=(102.6, 17.4),
    u0=(63.5, 1.76),
    v0=(47.5, 1.74),
    baseline=(0.497, 0.174),
    disparity=(3.87, 1.90),
    tx=(-0.025, 1.44),
    ty=(0.707, 0.943),
    tz=(14.08, 3.42),
    pitch=(0.0706, 0.0597),
)
model = dict(
    type="UGCLStereoNet",
    backbone=dict(type="TimmBackbone", model_name="resnet18", out_indices=(1, 4)),
    shared_trunk=True,
    corr_level=0,
    max_disp=8,
    fusion_channels=128,
    pool_size=(3, 4),
    head=dict(
        type="CameraCalibrationHead",
        hidden_channels=(256, 128),
        param_stats=param_stats,
        rotation="cos_sin",
        vp_mode="sphere",
        vp_axes=(1, 2),
        # Every term weighs 1 (as in UGCL); a weight of 0 switches a term off. `planes`: the rows of P
        # as world planes (named in UGCL's abstract, absent from its notebooks), offsets over 10 m.
        loss_weights=dict(vp=1.0, wc=1.0, planes=1.0, orth=1.0, det=1.0),
    ),
)
