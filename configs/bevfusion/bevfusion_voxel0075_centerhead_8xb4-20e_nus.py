# LiDAR-only twin of the full-size fused config (0.075 m sparse voxels; needs CUDA sparse convolutions).
_base_ = ["./bevfusion_swint-lss_voxel0075_convfuser_centerhead_8xb4-20e_nus.py"]

model = dict(encoders=dict(camera=None), fuser=None)
val_evaluator = dict(modality=dict(use_camera=False, use_lidar=True))
test_evaluator = val_evaluator
