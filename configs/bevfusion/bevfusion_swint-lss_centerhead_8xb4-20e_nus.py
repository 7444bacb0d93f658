# Camera-only twin of the full-size fused config (Swin-T LSS, depth supervised by LiDAR in training).
_base_ = ["./bevfusion_swint-lss_voxel0075_convfuser_centerhead_8xb4-20e_nus.py"]

model = dict(
    data_preprocessor=dict(voxelize=None),
    encoders=dict(lidar=None, camera=dict(view_transform=dict(depth_loss_weight=1.0))),
    fuser=None,
    decoder=dict(backbone=dict(in_channels=80)),
)
val_evaluator = dict(modality=dict(use_camera=True, use_lidar=False))
test_evaluator = val_evaluator
