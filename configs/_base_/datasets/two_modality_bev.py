# Generated camera + LiDAR BEV rasters with car centres and a road map
# (perception_mtl.synthetic.bev_rasters.TwoModalityBEVDataset); train and val use disjoint seed streams.
dataset_type = "TwoModalityBEVDataset"
grid_size = 32

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="train", num_samples=1024, grid_size=grid_size),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="val", num_samples=256, grid_size=grid_size),
)
test_dataloader = val_dataloader

val_evaluator = [
    dict(type="BEVCenterAPMetric", distance_thresholds=(0.5, 1.0, 2.0)),
    dict(type="BEVSegIoUMetric", classes=("drivable_area", "walkway"), prefix="map"),
]
test_evaluator = val_evaluator
