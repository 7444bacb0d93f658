import torch

from perception_mtl.registry import METRICS
from perception_mtl.testing import RegistryCase


def check_bev_seg_metric(metric):
    metric.dataset_meta = {"classes": ("car", "pedestrian")}
    gt = torch.zeros(2, 4, 4)
    gt[0, :2] = 1
    metric.process({}, [dict(pred_bev_seg=gt.clone(), gt_bev_seg=gt)])
    result = metric.evaluate(1)
    assert result["bev_seg/car_IoU"] == 1.0


CASES = {
    "BEVSegIoUMetric": RegistryCase(METRICS, dict(type="BEVSegIoUMetric"), check_bev_seg_metric),
}
