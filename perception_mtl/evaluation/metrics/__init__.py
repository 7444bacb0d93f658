from .bev_seg_iou_metric import BEVSegIoUMetric

__all__ = ["BEVSegIoUMetric"]
