# LiDAR-only twin of bevfusion_fusion_demo.py: same pillar encoder, decoder, head and schedule,
# no camera encoder and no fuser; images are not loaded.
_base_ = ["./bevfusion_fusion_demo.py"]

bev_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
det_class_names = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
sweeps_num = 3
train_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type="mmdet3d.ObjectSample", db_sampler={{_base_.db_sampler}}),
    dict(type="BEVAug", rot_range=(-0.3925, 0.3925), scale_range=(0.95, 1.05), translation_std=(0.2, 0.2, 0.2)),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectNameFilter", classes=det_class_names),
    dict(type="PackMTLInputs"),
]
test_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=sweeps_num, test_mode=True),
    dict(type="BEVAug", is_train=False),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="PackMTLInputs", keys=("points",)),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, modality=dict(use_camera=False, use_lidar=True)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=dict(use_camera=False, use_lidar=True)))
test_dataloader = val_dataloader

model = dict(encoders=dict(camera=None), fuser=None, decoder=dict(backbone=dict(in_channels=32)))
val_evaluator = dict(modality=dict(use_camera=False, use_lidar=True))
test_evaluator = val_evaluator
