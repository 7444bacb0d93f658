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


def check_bev_center_ap_metric(metric):
    gt = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    pred = torch.tensor([[0.3, 0.0], [9.0, 9.0], [5.0, 5.2]])
    metric.process({}, [dict(pred_centers=pred, pred_scores=torch.tensor([0.9, 0.8, 0.7]), gt_centers=gt)])
    result = metric.evaluate(1)
    # Ranked hit, miss, hit: precision 1 at recall 1/2, 2/3 at recall 1 -> AP = 0.5 + 0.5 * 2/3.
    assert abs(result["det/AP@0.5m"] - (0.5 + 1 / 3)) < 1e-9


CASES["BEVCenterAPMetric"] = RegistryCase(
    METRICS, dict(type="BEVCenterAPMetric", distance_thresholds=(0.5,)), check_bev_center_ap_metric
)


def check_sem_seg_iou_metric(metric):
    metric.dataset_meta = {"classes": ("sky", "ground")}
    gt = torch.tensor([[0, 0], [1, 1]])
    metric.process({}, [dict(pred_sem_seg=torch.tensor([[0, 1], [1, 1]]), gt_sem_seg=gt)])
    result = metric.evaluate(1)
    assert result["seg/sky_IoU"] == 0.5 and abs(result["seg/ground_IoU"] - 2 / 3) < 1e-12


def check_depth_error_metric(metric):
    metric.process({}, [dict(pred_depth=torch.tensor([2.0, 4.5, 9.0]), gt_depth=torch.tensor([2.0, 5.0, 0.0]))])
    result = metric.evaluate(1)  # the third pixel has no valid target
    assert abs(result["depth/abs_rel"] - 0.05) < 1e-12 and result["depth/delta1"] == 1.0


def check_edge_f1_metric(metric):
    gt = torch.zeros(8, 8)
    gt[:, 3] = 1
    metric.process({}, [dict(pred_edge=gt * 0.9, gt_edge=gt)])
    assert metric.evaluate(1)["edge/ODS_F"] == 1.0


CASES["SemSegIoUMetric"] = RegistryCase(METRICS, dict(type="SemSegIoUMetric"), check_sem_seg_iou_metric)
CASES["DepthErrorMetric"] = RegistryCase(METRICS, dict(type="DepthErrorMetric"), check_depth_error_metric)
CASES["EdgeF1Metric"] = RegistryCase(METRICS, dict(type="EdgeF1Metric"), check_edge_f1_metric)


def _tiny_nuscenes_metric_cfg() -> dict:
    import tempfile

    from perception_mtl.testing import tiny_nuscenes as db

    root = tempfile.mkdtemp(prefix="tiny_nusc_")
    return dict(type="NuScenesDetectionMetric", data_root=root, ann_file=db.write_tiny_nuscenes_db(root))


def check_nuscenes_detection_metric(metric):
    import pickle

    import numpy as np
    from mmdet3d.structures import LiDARInstance3DBoxes

    with open(metric.ann_file, "rb") as f:
        info_file = pickle.load(f)
    infos = info_file["data_list"]
    metric.dataset_meta = dict(classes=info_file["metainfo"]["classes"])
    samples = []
    for info in infos:
        boxes = np.array([[*inst["bbox_3d"], *inst["velocity"]] for inst in info["instances"]], np.float32)
        boxes[:, 2] -= boxes[:, 5] / 2
        labels = torch.tensor([inst["bbox_label_3d"] for inst in info["instances"]])
        boxes_3d = LiDARInstance3DBoxes(torch.from_numpy(boxes), box_dim=9)
        pred = dict(bboxes_3d=boxes_3d, scores_3d=torch.ones(len(boxes)), labels_3d=labels)
        samples.append(dict(token=info["token"], pred_instances_3d=pred))
    metric.process(None, samples)
    result = metric.evaluate(len(samples))
    assert result["nuscenes_det/mAP"] > 0.99 and result["nuscenes_det/NDS"] > 0.99


CASES["NuScenesDetectionMetric"] = RegistryCase(METRICS, _tiny_nuscenes_metric_cfg, check_nuscenes_detection_metric)
