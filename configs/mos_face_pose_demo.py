# CPU demo of MOS (face detection + 5 landmarks + head pose) on synthetic faces: MobileNetV2-0.5,
# 192x192 inputs, 2000 training images x 4 epochs in batches of 8, AdamW with cosine decay, one process.
# Data first (about a minute; train and val from disjoint seeds, plus an AFLW2000-style pose split):
#   python tools/create_data.py faces --out-dir data/synthetic_faces
# then: python tools/train.py configs/mos_face_pose_demo.py
#       python tools/test.py configs/mos_face_pose_demo.py work_dirs/mos_face_pose_demo/epoch_4.pth
# Metrics: face/AP_easy|medium|hard (faces >= 48 px | >= 24 px | all), face/NME, face/yaw|pitch|roll_MAE.
_base_ = [
    "_base_/datasets/synthetic_faces.py",
    "_base_/models/mos_mobilenetv2.py",
    "_base_/default_runtime.py",
]

train_dataloader = dict(batch_size=8)
model = dict(
    backbone=dict(model_name="mobilenetv2_050"),
    head=dict(pose_channels=128),
)
max_epochs = 4
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    # no weight decay on the learned log-variances; over the demo the task weights go from 1 to about
    # 0.44 (face), 0.33 (landmark), 0.28 (pose). A 10x lr on them let the face loss dominate sooner.
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
