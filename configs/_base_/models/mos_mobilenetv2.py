# MOS-M (Liu et al., BMVC 2021): MobileNetV2 (strides 8/16/32, 32/96/320 channels; no pretrained weights),
# FPN to 64 channels + one SSH module per level, six cross-stitched task branches per level (face score,
# box, 5 landmarks, yaw, pitch, roll; 66 bins of 3 degrees), RetinaFace anchors and encoding, and
# learned uncertainty weighting of the face / landmark / pose losses. Input: BGR minus (104, 117, 123).
model = dict(
    type="MOSFaceNet",
    data_preprocessor=dict(
        type="ImgDataPreprocessor", mean=[104.0, 117.0, 123.0], std=[58.0, 57.0, 57.5], pad_size_divisor=32
    ),
    backbone=dict(type="TimmBackbone", model_name="mobilenetv2_100", out_indices=(2, 3, 4)),
    neck=dict(type="FPNSSH", out_channels=64),
    head=dict(
        type="FacePoseHead",
        stitch_channels=64,
        pose_channels=128,
        cross_stitch=True,
        min_sizes=[[16, 32], [64, 128], [256, 512]],
        strides=[8, 16, 32],
        variances=[0.1, 0.2],
        loc_weight=2.0,
        pose_reg_loss="l1",
        pose_reg_weight=0.1,
    ),
    uncertainty_weighting=True,
)
