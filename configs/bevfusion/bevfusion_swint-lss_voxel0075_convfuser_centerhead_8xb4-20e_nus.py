# BEVFusion-like camera + LiDAR detector at full nuScenes size (Swin-T 256x704, 0.075 m sparse voxels,
# ConvFuser, SECOND + SECONDFPN, CenterHead). The sparse LiDAR encoder needs CUDA (spconv or mmcv's
# sparse ops); for CPU use the pillar variant bevfusion_swint-lss_pillar03_convfuser_centerhead_8xb4-20e_nus.py.
# Real nuScenes: point data_root at it, set nusc_version = "v1.0-trainval" and eval_set = "val".
#   torchrun --nproc-per-node 8 tools/train.py CONFIG --launcher pytorch
_base_ = [
    "../_base_/datasets/nuscenes_mtl.py",
    "../_base_/models/bevfusion_swint-lss_voxel0075_convfuser_centerhead.py",
    "../_base_/schedules/bevfusion_adamw_cosine_20e.py",
    "../_base_/default_runtime.py",
]

data_root = "data/synthetic_nuscenes/"
nusc_version = "v1.0-mini"
eval_set = "mini_val"
train_dataloader = dict(batch_size=4, dataset=dict(filter_empty_gt=False))
val_evaluator = dict(
    type="NuScenesDetectionMetric",
    data_root=data_root,
    ann_file="nuscenes_infos_val.pkl",
    version=nusc_version,
    eval_set=eval_set,
)
test_evaluator = val_evaluator
