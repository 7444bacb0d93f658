# CPU demo of MOS (face detection + 5 landmarks + head pose) on synthetic faces: MobileNetV2-0.5,
# 192x192 inputs, 2000 training images x 8 epochs, AdamW with cosine decay, one process.
# Data: python tools/create_data.py faces --out-dir data/synthetic_faces. Results: configs/mos/README.md.
_base_ = [
    "../_base_/datasets/synthetic_faces.py",
    "../_base_/models/mos_mobilenetv2.py",
    "../_base_/default_runtime.py",
]

train_dataloader = dict(batch_size=8)
model = dict(
    backbone=dict(model_name="mobilenetv2_050"),
    head=dict(pose_channels=128, pose_kernel=1, pose_reg_weight=1.0),
)
max_epochs = 8
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    # no weight decay on the learned log-variances (a larger lr on them lets the face loss dominate sooner).
    paramwise_cfg=dict(custom_keys={"task_weighting.log_vars": dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10.0, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.05, by_epoch=False, begin=0, end=40),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=3e-5, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=max_epochs))
# Conv weights in channels-last layout (oneDNN NHWC kernels), same maths, faster on the CPU
# (`OMP_NUM_THREADS=1 python tools/benchmark.py channels_last` measures it).
custom_hooks = [dict(type="ChannelsLastHook")]
