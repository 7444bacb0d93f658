"""``TwoModalityMultiTaskNet`` configs at any width, for the tests and the ``grad_balance`` benchmark.

``two_modality_net_cfg()`` with its defaults is the model of ``configs/_base_/models/two_modality_multitask_net.py``
(a test keeps the two equal); the arguments make the small and single-modality variants the tests train.
"""

from __future__ import annotations

from collections.abc import Sequence

IN_CHANNELS = {"camera": 3, "lidar": 2}  # TwoModalityBEVDataset's rasters
MAP_CLASSES = 2  # drivable area, walkway


def two_modality_net_cfg(
    modalities: Sequence[str] = ("camera", "lidar"),
    tasks: Sequence[str] = ("det", "map"),
    branch_channels: int = 16,
    shared_channels: int = 32,
    norm: str = "BN",
    heatmap_radius: int = 4,
    cell_m: float = 0.5,
) -> dict:
    """The model config: a SECOND stage per modality, ConvFuser, TwoScaleBEVBackbone, two heads.

    Args:
        modalities: encoders to build, a subset of ('camera', 'lidar'), in fuser order; with one
            there is no fuser.
        tasks: heads to build, a subset of ('det', 'map').
        branch_channels: width of each modality encoder (a multiple of 4 with GN).
        shared_channels: width of the fused map and of the shared feature (a multiple of 8 with GN).
        norm: 'BN', or 'GN' (4 groups; keeps samples independent, e.g. for gradient-accumulation and
            DDP parity tests).
        heatmap_radius: detection heatmap Gaussian radius in cells.
        cell_m: BEV cell size in metres (the dataset's).
    """
    if norm not in ("BN", "GN"):
        raise ValueError(f"two_modality_net_cfg: norm must be 'BN' or 'GN', got {norm!r}")
    norm_cfg = dict(type="BN") if norm == "BN" else dict(type="GN", num_groups=4)
    conv_cfg = dict(type="Conv2d", bias=False)
    encoders = {
        m: dict(
            type="mmdet3d.SECOND",
            in_channels=IN_CHANNELS[m],
            out_channels=[branch_channels],
            layer_nums=[1],
            layer_strides=[1],
            norm_cfg=norm_cfg,
            conv_cfg=conv_cfg,
        )
        for m in modalities
    }
    fuser = None
    fused = branch_channels
    if len(modalities) > 1:
        fuser = dict(
            type="ConvFuser",
            in_channels=[branch_channels] * len(modalities),
            out_channels=shared_channels,
            norm_cfg=norm_cfg,
        )
        fused = shared_channels
    decoder = dict(
        backbone=dict(type="TwoScaleBEVBackbone", in_channels=fused, out_channels=shared_channels, norm_cfg=norm_cfg),
        neck=None,
    )
    heads = dict(
        det=dict(
            type="BEVCenterHeatmapHead",
            in_channels=shared_channels,
            feat_channels=shared_channels // 2,
            cell_m=cell_m,
            heatmap_radius=heatmap_radius,
            max_detections=20,
            score_threshold=0.05,
            loss_heatmap=dict(type="mmdet.GaussianFocalLoss"),
            loss_offset=dict(type="mmdet.L1Loss"),
        ),
        map=dict(
            type="BEVSegHead",
            in_channels=shared_channels,
            num_classes=MAP_CLASSES,
            feat_channels=shared_channels // 2,
            pos_weight=2.0,
        ),
    )
    return dict(
        type="TwoModalityMultiTaskNet",
        tasks=tuple(tasks),
        encoders=encoders,
        fuser=fuser,
        decoder=decoder,
        heads={t: heads[t] for t in tasks},
    )
