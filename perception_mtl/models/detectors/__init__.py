from .toy_bev_segmentor import ToyBEVSegmentor

__all__ = ["ToyBEVSegmentor"]
