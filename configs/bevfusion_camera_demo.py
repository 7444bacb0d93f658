# Camera-only twin of bevfusion_fusion_demo.py: same camera encoder, decoder, head and schedule,
# no LiDAR encoder and no fuser (LiDAR still supervises depth in training, as in BEVDepth).
_base_ = ["./bevfusion_fusion_demo.py"]

model = dict(
    data_preprocessor=dict(voxelize=None),
    encoders=dict(lidar=None),
    fuser=None,
    decoder=dict(backbone=dict(in_channels=24)),
)
val_evaluator = dict(modality=dict(use_camera=True, use_lidar=False))
test_evaluator = val_evaluator
