# BEVFusion-like camera + LiDAR detector at full nuScenes size (mmdet3d projects/BEVFusion sizes):
# Swin-T on 256x704 images -> LSS-FPN -> LSS depth transform (0.3 m cells, downsample 2 -> 180x180);
# 0.075 m voxels -> mmdet3d SparseEncoder (CUDA) -> 256 x 180 x 180; ConvFuser [80, 256] -> 256;
# SECOND + SECONDFPN -> 512; CenterHead with nuScenes' six class groups, velocity and circle NMS.
bev_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.075, 0.075, 0.2]
bev_bound = [-54.0, 54.0, 0.3]  # camera BEV before the stride-2 downsample
out_size_factor = 8  # head cells = 0.075 m * 8 = 0.6 m -> 180 x 180
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

model = dict(
    type="MultiTaskBEVModel",
    tasks=("det",),
    data_preprocessor=dict(
        type="BEVDataPreprocessor",
        voxelize=dict(
            voxel_size=voxel_size, point_cloud_range=bev_range, max_num_points=10, max_voxels=(120000, 160000)
        ),
    ),
    encoders=dict(
        camera=dict(
            backbone=dict(
                type="TimmBackbone",
                model_name="swin_tiny_patch4_window7_224",
                out_indices=(1, 2, 3),
                img_size=(256, 704),
                drop_path_rate=0.2,
                checkpoint=None,  # a local Swin-T checkpoint (e.g. nuImages-pretrained) when available
            ),
            neck=dict(type="LSSFPN", in_channels=[192, 384, 768], out_channels=256, num_outs=1),
            view_transform=dict(
                type="LSSDepthTransform",
                in_channels=256,
                out_channels=80,
                xbound=bev_bound,
                ybound=bev_bound,
                zbound=[-10.0, 10.0, 20.0],
                dbound=[1.0, 60.0, 0.5],
                downsample=2,
                depth_loss_weight=0.0,
            ),
        ),
        lidar=dict(
            type="SparseVoxelLidarEncoder",
            in_channels=5,
            sparse_shape=[41, 1440, 1440],
            out_channels=256,
            encoder=dict(
                output_channels=128,
                order=("conv", "norm", "act"),
                encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
                encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
                block_type="basicblock",
            ),
        ),
    ),
    fuser=dict(type="ConvFuser", in_channels=[80, 256], out_channels=256),
    decoder=dict(
        backbone=dict(
            type="mmdet3d.SECOND",
            in_channels=256,
            out_channels=[128, 256],
            layer_nums=[5, 5],
            layer_strides=[1, 2],
            norm_cfg=dict(type="BN", eps=1e-3, momentum=0.01),
            conv_cfg=dict(type="Conv2d", bias=False),
        ),
        neck=dict(
            type="mmdet3d.SECONDFPN",
            in_channels=[128, 256],
            out_channels=[256, 256],
            upsample_strides=[1, 2],
            norm_cfg=dict(type="BN", eps=1e-3, momentum=0.01),
            upsample_cfg=dict(type="deconv", bias=False),
            use_conv_for_no_stride=True,
        ),
    ),
    heads=dict(
        det=dict(
            type="CenterDetHead",
            class_names=det_class_names,
            in_channels=512,
            tasks=class_groups,
            common_heads=dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
            share_conv_channel=64,
            bbox_coder=dict(
                type="mmdet3d.CenterPointBBoxCoder",
                post_center_range=post_center_range,
                max_num=500,
                score_threshold=0.1,
                out_size_factor=out_size_factor,
                voxel_size=voxel_size[:2],
                pc_range=bev_range[:2],
                code_size=9,
            ),
            separate_head=dict(type="mmdet3d.SeparateHead", init_bias=-2.19, final_kernel=3),
            loss_cls=dict(type="mmdet.GaussianFocalLoss", reduction="mean"),
            loss_bbox=dict(type="mmdet.L1Loss", reduction="mean", loss_weight=0.25),
            norm_bbox=True,
            train_cfg=dict(
                grid_size=[1440, 1440, 41],
                voxel_size=voxel_size,
                out_size_factor=out_size_factor,
                dense_reg=1,
                gaussian_overlap=0.1,
                max_objs=500,
                min_radius=2,
                point_cloud_range=bev_range,
                code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2],
            ),
            test_cfg=dict(
                post_center_limit_range=post_center_range,
                max_per_img=500,
                max_pool_nms=False,
                min_radius=[4, 12, 10, 1, 0.85, 0.175],
                score_threshold=0.1,
                out_size_factor=out_size_factor,
                voxel_size=voxel_size[:2],
                pc_range=bev_range[:2],
                nms_type="circle",
                pre_max_size=1000,
                post_max_size=83,
                nms_thr=0.2,
            ),
        )
    ),
)
