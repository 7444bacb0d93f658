# The full-size M3Net with the pure-PyTorch LiDAR branch (0.3 m pillars, as the BEVFusion pillar variant):
# runs on the CPU and exports without sparse convolutions.
_base_ = ["./m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py"]

bev_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
pillar_size = [0.3, 0.3, 8.0]
model = dict(
    data_preprocessor=dict(
        voxelize=dict(voxel_size=pillar_size, point_cloud_range=bev_range, max_num_points=20, max_voxels=(60000, 80000))
    ),
    encoders=dict(
        lidar=dict(
            _delete_=True,
            type="PillarLidarEncoder",
            in_channels=5,
            feat_channels=64,
            out_channels=256,
            voxel_size=pillar_size,
            point_cloud_range=bev_range,
            out_stride=2,
            num_convs=2,
        )
    ),
    heads=dict(
        det=dict(
            bbox_coder=dict(out_size_factor=2, voxel_size=pillar_size[:2]),
            train_cfg=dict(grid_size=[360, 360, 1], voxel_size=pillar_size, out_size_factor=2),
            test_cfg=dict(out_size_factor=2, voxel_size=pillar_size[:2]),
        )
    ),
)
