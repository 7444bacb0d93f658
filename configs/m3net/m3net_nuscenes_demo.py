# M3Net at demo size on the synthetic nuScenes-format data: the fused demo detector with a MAFI fuser,
# per-task channel scaling (TCS) and three heads (3D detection, BEV map segmentation, Occ3D occupancy),
# trained jointly with FULLER gradient balancing; evaluates det mAP / NDS, map mIoU and occ mIoU.
# Results and commands: configs/m3net/README.md.
_base_ = ["../bevfusion/bevfusion_fusion_demo.py", "../_base_/datasets/m3net_labels.py"]

# Base-file variables are not visible here; these repeat the base's values.
bev_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
data_root = "data/synthetic_nuscenes/"
map_bound = [-50.0, 50.0, 0.5]  # 200 x 200 cells of 0.5 m (BEVFusion's map grid)
map_classes = {{_base_.map_classes}}
tasks = ("det", "map", "occ")
occ_classes = {{_base_.occ_classes}}
shared_channels = 64  # SECONDFPN's concatenated output
# Camera-visible voxels per class over the synthetic train split's Occ3D labels (np.bincount of semantics
# under mask_camera); the occupancy loss weights classes by 1 / ln(e + count), as FlashOcc does.
occ_class_frequencies = [0, 178440, 64716, 41535, 6859, 19630, 537, 1939, 17495, 2673, 7094, 1904592, 0, 728668,
                         2002282, 994743, 590948, 81537322]  # fmt: skip

model = dict(
    tasks=tasks,
    fuser=dict(_delete_=True, type="MAFIFuser", in_channels=[24, 32], out_channels=32),
    task_scaling=dict(type="TaskChannelScaling", channels=shared_channels, hidden_channels=16),
    heads=dict(
        map=dict(
            type="BEVMapSegHead",
            in_channels=shared_channels,
            bev_range=bev_range,
            xbound=map_bound,
            ybound=map_bound,
            feat_channels=32,
            num_convs=1,
            loss="focal",
        ),
        occ=dict(
            type="OccupancyHead",
            in_channels=shared_channels,
            bev_range=bev_range,
            feat_channels=32,
            num_convs=1,
            proj="conv",
            class_frequencies=occ_class_frequencies,
        ),
    ),
)

# The fused demo's pipelines plus the map raster and the Occ3D labels (loaded after the BEV augmentation,
# so all three targets move with the points).
image_size = [64, 176]
sweeps_num = 3
targets = [
    dict(type="LoadBEVMapSegmentation", data_root=data_root, xbound=map_bound, ybound=map_bound, cache_tokens=512),
    dict(type="LoadOccupancy"),
]
train_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type="mmdet3d.ObjectSample", db_sampler={{_base_.db_sampler}}),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.40, 0.48), rot_lim=(-5.4, 5.4), is_train=True),
    dict(type="BEVAug", rot_range=(-0.3925, 0.3925), scale_range=(0.95, 1.05), translation_std=(0.2, 0.2, 0.2)),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectNameFilter", classes={{_base_.det_class_names}}),
    *targets,
    dict(type="PackMTLInputs"),
]
test_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.44, 0.44), is_train=False),
    dict(type="BEVAug", is_train=False),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    *targets,
    dict(type="PackMTLInputs", keys=("points", "img")),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(
        type="NuScenesDetectionMetric",
        data_root=data_root,
        ann_file="nuscenes_infos_val.pkl",
        version="v1.0-mini",
        eval_set="mini_val",
    ),
    dict(type="BEVSegIoUMetric", classes=map_classes, prefix="map"),
    dict(type="OccupancyMIoUMetric", classes=occ_classes, prefix="occ"),
]
test_evaluator = val_evaluator

optim_wrapper = dict(
    _delete_=True,
    type="GradBalanceOptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35.0, norm_type=2),
    tasks=tasks,
    # CAGrad between the tasks stays near the mean gradient (IMTL-G starved detection; see the README).
    balancer=dict(type="FULLER", inter="cagrad", intra="mean"),
)
