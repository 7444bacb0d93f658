# nuScenes-format data for multi-task BEV models (perception_mtl.datasets.NuScenesMTLDataset).
# Default root: the synthetic nuScenes-format dataset (`python tools/create_data.py synthetic
# --out-dir data/synthetic_nuscenes`); point data_root at real nuScenes infos to train on it.
dataset_type = "NuScenesMTLDataset"
data_root = "data/synthetic_nuscenes/"
class_names = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
image_size = [256, 704]
map_bound = [-50.0, 50.0, 0.5]  # 200 x 200 cells of 0.5 m

train_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=9),
    dict(type="LoadMultiViewImages"),
    dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.38, 0.55), rot_lim=(-5.4, 5.4), is_train=True),
    dict(type="BEVAug", rot_range=(-0.3925, 0.3925), scale_range=(0.95, 1.05), translation_std=(0.5, 0.5, 0.5)),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="mmdet3d.ObjectRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="mmdet3d.ObjectNameFilter", classes=class_names),
    dict(type="LoadBEVMapSegmentation", data_root=data_root, xbound=map_bound, ybound=map_bound),
    dict(type="LoadOccupancy"),
    dict(type="PackMTLInputs"),
]
test_pipeline = [
    dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=9, test_mode=True),
    dict(type="LoadMultiViewImages"),
    dict(type="MultiViewImageAug", final_size=image_size, resize_lim=(0.48, 0.48), is_train=False),
    dict(type="BEVAug", is_train=False),
    dict(type="mmdet3d.PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="LoadBEVMapSegmentation", data_root=data_root, xbound=map_bound, ybound=map_bound),
    dict(type="LoadOccupancy"),
    dict(type="PackMTLInputs", keys=("points", "img")),
]

metainfo = dict(classes=class_names)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="nuscenes_infos_train.pkl",
        pipeline=train_pipeline,
        metainfo=metainfo,
        test_mode=False,
        box_type_3d="LiDAR",
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="nuscenes_infos_val.pkl",
        pipeline=test_pipeline,
        metainfo=metainfo,
        test_mode=True,
        box_type_3d="LiDAR",
    ),
)
test_dataloader = val_dataloader
