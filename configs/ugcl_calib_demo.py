# CPU demo of UGCL stereo calibration: shared RegNetX-200MF trunk (first three stages) on 128x96
# pairs, 6400 training pairs x 6 epochs at batch 16, AdamW with cosine decay, one process;
# evaluated once on the 1600 test pairs. Channels-last conv weights (below) made the step 0.70-0.77x
# as long, which bought 6 epochs instead of 4 within the 10-minute budget: 398 s on the 2-core
# machine, fx MAE 6.13 px = 5.93 % of f (4 epochs: 317 s, 6.30 %; 8 epochs without it, 18 min: 5.64 %).
# Data first (about 8 minutes on 2 cores; fixed shuffled 80/20 split stored in splits/):
#   python tools/create_data.py cvgl --out-dir data/synthetic_cvgl
# then: python tools/train.py configs/ugcl_calib_demo.py
#       python tools/test.py configs/ugcl_calib_demo.py work_dirs/ugcl_calib_demo/epoch_6.pth
# Ablation without the geometric losses: --cfg-options model.head.loss_weights.vp=0 \
#   model.head.loss_weights.wc=0 model.head.loss_weights.orth=0 model.head.loss_weights.det=0
_base_ = ["./ugcl_calib.py"]

model = dict(
    backbone=dict(model_name="regnetx_002", out_indices=(1, 3)),
    fusion_channels=96,
    pool_size=(6, 8),
    head=dict(hidden_channels=(192, 96)),
)
train_dataloader = dict(batch_size=16)
max_epochs = 6
param_scheduler = [
    dict(type="LinearLR", start_factor=0.05, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs),
]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=max_epochs))
# Conv weights in channels-last layout (oneDNN NHWC kernels), same maths: training step 0.70-0.77x
# the time on the 2-core CPU (`OMP_NUM_THREADS=1 python tools/benchmark.py channels_last`).
custom_hooks = [dict(type="ChannelsLastHook")]
