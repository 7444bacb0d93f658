# Demo-size BEVFusion-like detector for the 2-core CPU and the synthetic nuScenes-format data:
# RegNetX-200MF on six 64x176 images -> LSS-FPN -> LSS depth transform (0.8 m cells, 128 x 128);
# 0.4 m pillars -> pillar net + scatter -> stride-2 conv -> 128 x 128; ConvFuser; a slim
# SECOND + SECONDFPN (strides 1, 2); CenterHead with nuScenes' six class groups, velocity and circle NMS.
bev_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
pillar_size = [0.4, 0.4, 8.0]
bev_bound = [-51.2, 51.2, 0.8]
head_cell = [0.8, 0.8]
det_class_names = [
    "car", "truck", "construction_vehicle", "bus", "trailer",
    "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone",
]  # fmt: skip
class_groups = [
    dict(num_class=1, class_names=["car"]),
    dict(num_class=2, class_names=["truck", "construction_vehicle"]),
    dict(num_class=2, class_names=["bus", "trailer"]),
    dict(num_class=1, class_names=["barrier"]),
    dict(num_class=2, class_names=["motorcycle", "bicycle"]),
    dict(num_class=2, class_names=["pedestrian", "traffic_cone"]),
]
post_center_range = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
camera_channels = 24
lidar_channels = 32
fused_channels = 32

model = dict(
    type="MultiTaskBEVModel",
    tasks=("det",),
    data_preprocessor=dict(
        type="BEVDataPreprocessor",
        voxelize=dict(
            voxel_size=pillar_size, point_cloud_range=bev_range, max_num_points=10, max_voxels=(30000, 40000)
        ),
    ),
    encoders=dict(
        camera=dict(
            backbone=dict(type="TimmBackbone", model_name="regnetx_002", out_indices=(2, 3, 4)),
            neck=dict(type="LSSFPN", in_channels=[56, 152, 368], out_channels=48, num_outs=1),
            view_transform=dict(
                type="LSSDepthTransform",
                in_channels=48,
                out_channels=camera_channels,
                xbound=bev_bound,
                ybound=bev_bound,
                zbound=[-10.0, 10.0, 20.0],
                dbound=[1.0, 60.0, 1.0],
                depth_loss_weight=1.0,
            ),
        ),
        lidar=dict(
            type="PillarLidarEncoder",
            in_channels=5,
            feat_channels=32,
            out_channels=lidar_channels,
            voxel_size=pillar_size,
            point_cloud_range=bev_range,
            out_stride=2,
            num_convs=0,
            bn_momentum=0.1,  # short schedules: running statistics must settle within a few hundred steps
        ),
    ),
    fuser=dict(type="ConvFuser", in_channels=[camera_channels, lidar_channels], out_channels=fused_channels),
    # The first SECOND stage keeps the 0.8 m head grid (strides 1, 2 as in BEVFusion): with strides 2, 2
    # every head cell sees only upsampled 1.6 m features, and localisation suffers.
    decoder=dict(
        backbone=dict(
            type="mmdet3d.SECOND",
            in_channels=fused_channels,
            out_channels=[32, 96],
            layer_nums=[1, 1],
            layer_strides=[1, 2],
            norm_cfg=dict(type="BN", eps=1e-3, momentum=0.1),
            conv_cfg=dict(type="Conv2d", bias=False),
        ),
        neck=dict(
            type="mmdet3d.SECONDFPN",
            in_channels=[32, 96],
            out_channels=[32, 32],
            upsample_strides=[1, 2],
            norm_cfg=dict(type="BN", eps=1e-3, momentum=0.1),
            upsample_cfg=dict(type="deconv", bias=False),
        ),
    ),
    heads=dict(
        det=dict(
            type="CenterDetHead",
            class_names=det_class_names,
            in_channels=64,
            tasks=class_groups,
            common_heads=dict(reg=(2, 1), height=(1, 1), dim=(3, 1), rot=(2, 1), vel=(2, 1)),
            share_conv_channel=32,
            num_heatmap_convs=1,
            bbox_coder=dict(
                type="mmdet3d.CenterPointBBoxCoder",
                post_center_range=post_center_range,
                max_num=300,
                score_threshold=0.05,
                out_size_factor=1,
                voxel_size=head_cell,
                pc_range=bev_range[:2],
                code_size=9,
            ),
            # mmdet3d's SeparateHead maths with the 36 one-conv output branches packed into one conv
            # (a faster CPU step). Output weights start as N(0, 0.001): big initial box outputs (Kaiming)
            # waste a short schedule.
            separate_head=dict(
                type="perception_mtl.PackedSeparateHead",
                init_bias=-2.19,
                final_kernel=3,
                head_conv=32,
                output_init_std=0.001,
            ),
            loss_cls=dict(type="mmdet.GaussianFocalLoss", reduction="mean"),
            loss_bbox=dict(type="mmdet.L1Loss", reduction="mean", loss_weight=0.25),
            norm_bbox=True,
            train_cfg=dict(
                grid_size=[128, 128, 1],
                voxel_size=[*head_cell, 8.0],
                out_size_factor=1,
                dense_reg=1,
                gaussian_overlap=0.1,
                max_objs=500,
                min_radius=2,
                point_cloud_range=bev_range,
                code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2],
            ),
            test_cfg=dict(
                post_center_limit_range=post_center_range,
                max_per_img=300,
                max_pool_nms=False,
                min_radius=[4, 12, 10, 1, 0.85, 0.175],
                score_threshold=0.05,
                out_size_factor=1,
                voxel_size=head_cell,
                pc_range=bev_range[:2],
                nms_type="circle",
                pre_max_size=1000,
                post_max_size=83,
                nms_thr=0.2,
            ),
        )
    ),
)
