# Camera-only twin of bevfusion_fusion_demo.py: same camera encoder, decoder, head and schedule,
# no LiDAR encoder and no fuser (LiDAR still supervises depth in training, as in BEVDepth).
_base_ = ["./bevfusion_fusion_demo.py"]

# The fused pipeline without object pasting: pasted objects have no pixels, so a camera model
# would be taught to see what is not in its images.
bev_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
det_class_names = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
train_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=3, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type="MultiViewImageAug", final_size=[64, 176], resize_lim=(0.40, 0.48), rot_lim=(-5.4, 5.4), is_train=True),
    dict(type="BEVAug", rot_range=(-0.3925, 0.3925), scale_range=(0.95, 1.05), translation_std=(0.2, 0.2, 0.2)),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectRangeFilter", point_cloud_range=bev_range),
    dict(type="mmdet3d.ObjectNameFilter", classes=det_class_names),
    dict(type="PackMTLInputs"),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    data_preprocessor=dict(voxelize=None),
    encoders=dict(lidar=None),
    fuser=None,
    decoder=dict(backbone=dict(in_channels=24)),
)
val_evaluator = dict(modality=dict(use_camera=True, use_lidar=False))
test_evaluator = val_evaluator
