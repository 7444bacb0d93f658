# BEVFusion/CenterPoint-style detection schedule: AdamW, gradient clip 35, warm-up then cosine
# over 20 epochs (BEVFusion trains LiDAR-only 20 epochs, then the fused model 6 from it).
max_epochs = 20
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=35.0, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.33333333, by_epoch=False, begin=0, end=500),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min_ratio=1e-3, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
auto_scale_lr = dict(enable=False, base_batch_size=32)
