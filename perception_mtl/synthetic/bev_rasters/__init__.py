"""Generated camera + LiDAR BEV rasters with two tasks (the gradient-balancing demo's data)."""

from .two_modality_bev_dataset import TwoModalityBEVDataset

__all__ = ["TwoModalityBEVDataset"]
