# Synthetic faces in the RetinaFace label.txt layout (+ yaw/pitch/roll), written by
# `python tools/create_data.py faces --out-dir data/synthetic_faces` (train and val from disjoint seeds).
# Real WIDER FACE with RetinaFace's label.txt files (and pose columns) loads with the same settings:
# point data_root at it and ann_file / data_prefix at its train/ and val/ folders.
dataset_type = "FaceDataset"
data_root = "data/synthetic_faces/"
img_size = 192

train_pipeline = [
    dict(type="LoadFaceImage"),
    dict(type="FaceResizePad", size=img_size, scale_range=(0.7, 1.3)),
    dict(type="FaceRandomFlip", prob=0.5),
    dict(type="PackFaceInputs"),
]
test_pipeline = [
    dict(type="LoadFaceImage"),
    dict(type="FaceResizePad", size=img_size),
    dict(type="PackFaceInputs"),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="train/label.txt",
        data_prefix=dict(img="train/"),
        min_size=2.0,
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file="val/label.txt",
        data_prefix=dict(img="val/"),
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader

# AP at IoU 0.5 for easy (faces >= 48 px), medium (>= 24 px) and hard (all faces); NME and pose MAE
# on the faces matched by a detection with score >= 0.5. Keys: face/AP_easy, face/NME, face/yaw_MAE, ...
val_evaluator = dict(type="FaceMetric", iou_thr=0.5, score_thr=0.5, size_splits=dict(easy=48.0, medium=24.0, hard=0.0))
test_evaluator = val_evaluator
