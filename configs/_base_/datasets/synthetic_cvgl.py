# Stereo pairs with calibration targets in the CVGL layout (memory-mapped .npy arrays), written by
# `python tools/create_data.py cvgl --out-dir data/synthetic_cvgl` (8000 rendered road scenes at
# 128x96, a fixed shuffled 80/20 train/test split in splits/). For the original CVGL arrays, point
# data_root at them and set ordered_train_ratio=0.7 (the papers' unshuffled split) and pitch_unit.
dataset_type = "CVGLStereoDataset"
data_root = "data/synthetic_cvgl"

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="train"),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="test"),
)
test_dataloader = val_dataloader
# Per-parameter MAE over the test split (pitch in degrees) and fx MAE in % of the mean focal length.
val_evaluator = dict(type="CameraCalibrationMetric")
test_evaluator = val_evaluator
