# Tiny job for the multi-node torchrun test (tests/engine/test_multinode_torchrun.py): the two-task
# net with GroupNorm (no batch statistics, so 2 processes x batch 4 equal 1 process x batch 8),
# no modality dropout, 16 generated 16x16 samples, 2 epochs of 2 iterations at a total batch of 8.
_base_ = ["../../../configs/grad_balance/grad_balance_two_task_ew.py"]

gn = dict(type="GN", num_groups=4)
encoder = dict(
    type="mmdet3d.SECOND",
    in_channels=3,
    out_channels=[8],
    layer_nums=[1],
    layer_strides=[1],
    norm_cfg=gn,
    conv_cfg=dict(type="Conv2d", bias=False),
)
model = dict(
    _delete_=True,
    type="TwoModalityMultiTaskNet",
    tasks=("det", "map"),
    encoders=dict(camera=encoder, lidar=dict(encoder, in_channels=2)),
    fuser=dict(type="ConvFuser", in_channels=[8, 8], out_channels=16, norm_cfg=gn),
    decoder=dict(backbone=dict(type="TwoScaleBEVBackbone", in_channels=16, out_channels=16, norm_cfg=gn), neck=None),
    heads=dict(
        det=dict(
            type="BEVCenterHeatmapHead",
            in_channels=16,
            feat_channels=8,
            cell_m=0.5,
            heatmap_radius=4,
            max_detections=20,
            score_threshold=0.05,
            loss_heatmap=dict(type="mmdet.GaussianFocalLoss"),
            loss_offset=dict(type="mmdet.L1Loss"),
        ),
        map=dict(type="BEVSegHead", in_channels=16, num_classes=2, feat_channels=8, pos_weight=2.0),
    ),
)
train_dataloader = dict(batch_size=8, dataset=dict(num_samples=16, grid_size=16))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(batch_size=8, dataset=dict(num_samples=8, grid_size=16))
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=100)
param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False, begin=0, end=4)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100, save_last=True))
log_processor = dict(window_size=1)
