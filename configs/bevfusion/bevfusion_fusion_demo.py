# Camera + LiDAR BEVFusion-like detector at demo size on the synthetic nuScenes-format data: trains on
# mini_train, evaluates mini_val with nuscenes-devkit (mAP, NDS, per-class AP). `make demo` runs it on
# both cores (two single-thread processes); results and commands in configs/bevfusion/README.md.
_base_ = [
    "../_base_/datasets/nuscenes_mtl.py",
    "../_base_/models/bevfusion_regnetx002-lss_pillar04_convfuser_centerhead_demo.py",
    "../_base_/schedules/bevfusion_adamw_onecycle_demo.py",
    "../_base_/default_runtime.py",
]

# Base-file variables are not visible here; these repeat the model base's values.
bev_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
det_class_names = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
data_root = "data/synthetic_nuscenes/"
max_epochs = 12
image_size = [64, 176]  # the synthetic 225x400 renders, resized by ~0.44, bottom 64 rows kept
# The synthetic sweeps run at 6 Hz, so the newest 3 span 0.5 s, nuScenes' 10 sweeps at 20 Hz. Drawing
# 3 of the 10 stored ones at random (mmdet3d's training default) would smear moving objects over
# up to 1.7 s and differ from evaluation: training takes the newest sweeps too (test_mode=True).
sweeps_num = 3
# Copy-paste of training objects (mmdet3d ObjectSample) from the database written by create_data;
# nuScenes' CenterPoint sample groups. Pasted objects exist only in the LiDAR points (as in BEVFusion).
db_sampler = dict(
    type="GTPasteSampler",
    data_root=data_root,
    info_path=data_root + "nuscenes_dbinfos_train.pkl",
    rate=1.0,
    prepare=dict(filter_by_difficulty=[-1], filter_by_min_points={name: 5 for name in det_class_names}),
    classes=det_class_names,
    sample_groups=dict(
        car=2,
        truck=3,
        construction_vehicle=7,
        bus=4,
        trailer=6,
        barrier=2,
        motorcycle=6,
        bicycle=6,
        pedestrian=2,
        traffic_cone=2,
    ),  # fmt: skip
    points_loader=dict(type="mmdet3d.LoadPointsFromFile", coord_type="LIDAR", load_dim=5, use_dim=[0, 1, 2, 3, 4]),
)
train_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type="mmdet3d.ObjectSample", db_sampler=db_sampler),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.40, 0.48), rot_lim=(-5.4, 5.4), is_train=True),
    dict(type="BEVAug", rot_range=(-0.3925, 0.3925), scale_range=(0.95, 1.05), translation_std=(0.2, 0.2, 0.2)),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectNameFilter", classes=det_class_names),
    dict(type="PackMTLInputs"),
]
test_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.44, 0.44), is_train=False),
    dict(type="BEVAug", is_train=False),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="PackMTLInputs", keys=("points", "img")),
]
train_dataloader = dict(batch_size=2, num_workers=1, dataset=dict(pipeline=train_pipeline, filter_empty_gt=False))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type="NuScenesDetectionMetric",
    data_root=data_root,
    ann_file="nuscenes_infos_val.pkl",
    version="v1.0-mini",
    eval_set="mini_val",
)
test_evaluator = val_evaluator

param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min_ratio=0.02, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
