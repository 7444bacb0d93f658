# Short one-cycle schedule for the CPU demos: AdamW, gradient clip 35, linear warm-up to the peak
# learning rate, then cosine decay; evaluation once, at the end.
max_epochs = 12
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35.0, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min_ratio=0.02, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
