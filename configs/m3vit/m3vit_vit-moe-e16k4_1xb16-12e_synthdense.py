# M³ViT multi-task ViT-MoE (E=16, top-4, per-task routers) on rendered synthetic scenes:
# semantic segmentation + depth + edges, 4096 training images, 12 epochs, batch 16, one process.
_base_ = [
    "../_base_/datasets/synthetic_dense_scenes.py",
    "../_base_/models/m3vit_vit-moe.py",
    "../_base_/schedules/adamw_cosine_m3vit.py",
    "../_base_/default_runtime.py",
]

default_hooks = dict(logger=dict(interval=32))
