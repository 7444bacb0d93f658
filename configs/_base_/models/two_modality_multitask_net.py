# Camera + LiDAR encoders -> conv fuser -> shared decoder -> 'det' (centres) and 'map' heads.
model = dict(
    type="TwoModalityMultiTaskNet",
    modalities=("camera", "lidar"),
    tasks=("det", "map"),
    in_channels=dict(camera=3, lidar=2),
    branch_channels=16,
    shared_channels=32,
    norm="BN",
)
