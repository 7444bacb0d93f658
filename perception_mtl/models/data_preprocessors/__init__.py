"""Data preprocessors: batching, normalisation and voxelisation on the model's device."""

from .bev_data_preprocessor import BEVDataPreprocessor

__all__ = ["BEVDataPreprocessor"]
