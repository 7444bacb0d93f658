from .toy_bev_dataset import ToyBEVDataset

__all__ = ["ToyBEVDataset"]
