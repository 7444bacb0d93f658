# Rendered synthetic scenes with semantic segmentation, depth and edge targets
# (perception_mtl.datasets.SyntheticDenseScenes). Train and val come from disjoint seed streams.
dataset_type = "SyntheticDenseScenes"
img_size = 64

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="train", num_samples=4096, img_size=img_size),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, split="val", num_samples=256, img_size=img_size),
)
test_dataloader = val_dataloader

# One metric per task; their keys are prefixed seg/, depth/, edge/.
val_evaluator = [
    dict(type="SemSegIoUMetric"),
    dict(type="DepthErrorMetric"),
    dict(type="EdgeF1Metric", tolerance=1),
]
test_evaluator = val_evaluator
