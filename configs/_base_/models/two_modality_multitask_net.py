# Camera + LiDAR BEV rasters (32 x 32 cells of 0.5 m) -> a SECOND stage per modality -> ConvFuser ->
# TwoScaleBEVBackbone (the shared feature) -> 'det' (car-centre heatmap) and 'map' (drivable area,
# walkway) heads. perception_mtl.testing.two_modality.two_modality_net_cfg() builds
# the same model at other widths.
branch_channels = 16
shared_channels = 32
cell_m = 0.5  # the dataset's cell size, for decoding centres in metres
norm_cfg = dict(type="BN")
conv_cfg = dict(type="Conv2d", bias=False)
# Each encoder: two 3x3 conv-norm-ReLU layers at full resolution.
camera_encoder = dict(
    type="mmdet3d.SECOND",
    in_channels=3,
    out_channels=[branch_channels],
    layer_nums=[1],
    layer_strides=[1],
    norm_cfg=norm_cfg,
    conv_cfg=conv_cfg,
)
lidar_encoder = dict(camera_encoder, in_channels=2)


model = dict(
    type="TwoModalityMultiTaskNet",
    tasks=("det", "map"),
    encoders=dict(camera=camera_encoder, lidar=lidar_encoder),
    fuser=dict(
        type="ConvFuser",
        in_channels=[branch_channels, branch_channels],
        out_channels=shared_channels,
        norm_cfg=norm_cfg,
    ),
    # Full-resolution fused map merged with a stride-2 context branch; its output is the shared feature.
    decoder=dict(
        backbone=dict(
            type="TwoScaleBEVBackbone", in_channels=shared_channels, out_channels=shared_channels, norm_cfg=norm_cfg
        ),
        neck=None,
    ),
    heads=dict(
        det=dict(
            type="BEVCenterHeatmapHead",
            in_channels=shared_channels,
            feat_channels=shared_channels // 2,
            cell_m=cell_m,
            heatmap_radius=4,  # Gaussian sigma (2 r + 1) / 6 = 1.5 cells
            max_detections=20,
            score_threshold=0.05,
            loss_heatmap=dict(type="mmdet.GaussianFocalLoss"),
            loss_offset=dict(type="mmdet.L1Loss"),
        ),
        map=dict(
            type="BEVSegHead",
            in_channels=shared_channels,
            num_classes=2,
            feat_channels=shared_channels // 2,
            pos_weight=2.0,
        ),
    ),
)
