# M3Net at full nuScenes size: the BEVFusion-size encoders (Swin-T LSS at 256x704, 0.075 m sparse voxels),
# a MAFI fuser, SECOND + SECONDFPN -> 512, per-task channel scaling and three heads (detection, map,
# occupancy), trained jointly with FULLER gradient balancing. The sparse LiDAR encoder needs CUDA; the
# pillar variant (m3net_swint-lss_pillar03_mafi_tcs_8xb4-20e_nus.py) runs on the CPU.
_base_ = [
    "../bevfusion/bevfusion_swint-lss_voxel0075_convfuser_centerhead_8xb4-20e_nus.py",
    "../_base_/datasets/m3net_labels.py",
]

bev_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
data_root = "data/synthetic_nuscenes/"
nusc_version = "v1.0-mini"  # real nuScenes: "v1.0-trainval" and eval_set "val"
eval_set = "mini_val"
map_bound = [-50.0, 50.0, 0.5]
map_classes = {{_base_.map_classes}}
tasks = ("det", "map", "occ")
occ_classes = {{_base_.occ_classes}}
shared_channels = 512

model = dict(
    tasks=tasks,
    fuser=dict(_delete_=True, type="MAFIFuser", in_channels=[80, 256], out_channels=256),
    task_scaling=dict(type="TaskChannelScaling", channels=shared_channels, hidden_channels=128),
    heads=dict(
        map=dict(
            type="BEVMapSegHead",
            in_channels=shared_channels,
            bev_range=bev_range,
            xbound=map_bound,
            ybound=map_bound,
            feat_channels=256,
            loss="focal",
        ),
        occ=dict(type="OccupancyHead", in_channels=shared_channels, bev_range=bev_range, feat_channels=256),
    ),
)
val_evaluator = [
    dict(
        type="NuScenesDetectionMetric",
        data_root=data_root,
        ann_file="nuscenes_infos_val.pkl",
        version=nusc_version,
        eval_set=eval_set,
    ),
    dict(type="BEVSegIoUMetric", classes=map_classes, prefix="map"),
    dict(type="OccupancyMIoUMetric", classes=occ_classes, prefix="occ"),
]
test_evaluator = val_evaluator
optim_wrapper = dict(
    _delete_=True,
    type="GradBalanceOptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=35.0, norm_type=2),
    tasks=tasks,
    balancer=dict(type="FULLER", inter="imtl_g", intra="mean"),
)
