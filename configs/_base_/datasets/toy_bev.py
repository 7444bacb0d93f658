# Generated BEV point rasters with footprint masks (perception_mtl.datasets.ToyBEVDataset).
# Train and val come from disjoint seed streams.
dataset_type = "ToyBEVDataset"
grid_size = 32

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="train", num_samples=2048, grid_size=grid_size),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="val", num_samples=128, grid_size=grid_size),
)
test_dataloader = val_dataloader

val_evaluator = dict(type="BEVSegIoUMetric")
test_evaluator = val_evaluator
