# MOS-M at full size: MobileNetV2-1.0 + FPN/SSH + cross-stitched face / box / landmark / yaw-pitch-roll
# branches on RetinaFace anchors, 640x640 inputs, SGD for 250 epochs (RetinaFace's recipe), batch 32.
# Data: synthetic faces at 640 px (create_data.py faces --img-size 640) or WIDER FACE (see the README).
_base_ = [
    "../_base_/datasets/synthetic_faces.py",
    "../_base_/models/mos_mobilenetv2.py",
    "../_base_/schedules/mos_sgd_250e.py",
    "../_base_/default_runtime.py",
]

img_size = 640
data_root = "data/synthetic_faces_640/"
train_pipeline = [
    dict(type="LoadFaceImage"),
    dict(type="FaceResizePad", size=img_size, scale_range=(0.5, 1.5)),
    dict(type="FaceRandomFlip", prob=0.5),
    dict(type="PackFaceInputs"),
]
test_pipeline = [
    dict(type="LoadFaceImage"),
    dict(type="FaceResizePad", size=img_size),
    dict(type="PackFaceInputs"),
]
train_dataloader = dict(batch_size=32, num_workers=4, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
default_hooks = dict(checkpoint=dict(interval=10))
