"""Rendered scenes with per-pixel semantics, depth and edges, generated on the fly (M³ViT demo data)."""

from .synthetic_dense_scenes_dataset import CLASSES, SyntheticDenseScenes, render_scene

__all__ = ["CLASSES", "SyntheticDenseScenes", "render_scene"]
