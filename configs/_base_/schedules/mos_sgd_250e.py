# RetinaFace's MobileNet recipe (which MOS forks): SGD lr 1e-3, momentum 0.9, weight decay 5e-4,
# linear warm-up, x0.1 at epochs 190 and 220 of 250; the learned log-variances get no weight decay.
max_epochs = 250
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={"task_weighting.log_vars": dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=35.0, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(type="MultiStepLR", milestones=[190, 220], gamma=0.1, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
