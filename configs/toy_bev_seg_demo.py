# Smallest working job (``make demo``) until the synthetic nuScenes-format dataset lands:
# BEV point raster -> car / pedestrian footprints, about a minute on a 2-core CPU.
_base_ = [
    "_base_/datasets/toy_bev.py",
    "_base_/models/toy_bev_segmentor.py",
    "_base_/schedules/adamw_cosine_8e.py",
    "_base_/default_runtime.py",
]

default_hooks = dict(logger=dict(interval=8))
