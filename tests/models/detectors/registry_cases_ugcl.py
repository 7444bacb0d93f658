import numpy as np
import torch

from perception_mtl.registry import DATASETS, METRICS, MODELS
from perception_mtl.testing import RegistryCase, check_model_trains
from perception_mtl.testing.camera_calibration import random_samples, tiny_cvgl_root, tiny_head_cfg, tiny_model_cfg


def _check_head(head):
    feats = torch.randn(4, 8, requires_grad=True)
    losses = head.loss(feats, random_samples(4))
    expected = {f"loss_{n}" for n in ("fx", "fy", "u0", "v0", "baseline", "disparity", "tx", "ty", "tz", "pitch")}
    assert set(losses) == expected | {"loss_vp", "loss_wc", "loss_planes", "loss_orth", "loss_det"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    preds = head.predict(feats.detach(), random_samples(4))
    assert preds[0].pred_calib.shape == (10,)


def _check_model(model):
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(dict(type="CVGLStereoDataset", data_root=tiny_cvgl_root(), split="train"))
    batch = pseudo_collate([dataset[i] for i in range(3)])
    losses = check_model_trains(model, batch)
    assert all(k.startswith("calib.loss_") for k in losses)
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch), mode="predict")
    assert preds[0].pred_calib.shape == (10,) and torch.isfinite(preds[0].pred_calib).all()


def _check_dataset(dataset):
    item = dataset[0]
    assert item["inputs"].shape == (2, 3, 32, 48) and item["inputs"].dtype == torch.uint8
    assert item["data_samples"].gt_calib.shape == (10,)
    assert len(dataset) == 9


def _check_metric(metric):
    gt = torch.tensor([100.0, 100.0, 64.0, 48.0, 0.5, 3.0, 0.0, 1.5, 12.0, 0.1])
    metric.process({}, [dict(pred_calib=gt + 1.0, gt_calib=gt)])
    result = metric.compute_metrics(metric.results)
    assert result["fx"] == 1.0 and np.isclose(result["pitch"], np.rad2deg(1.0)) and result["fx_pct"] == 1.0


CASES = {
    "CameraCalibrationHead": RegistryCase(MODELS, tiny_head_cfg(in_channels=8), _check_head),
    "UGCLStereoNet": RegistryCase(MODELS, tiny_model_cfg(), _check_model),
    "CVGLStereoDataset": RegistryCase(
        DATASETS, lambda: dict(type="CVGLStereoDataset", data_root=tiny_cvgl_root(), split="train"), _check_dataset
    ),
    "CameraCalibrationMetric": RegistryCase(METRICS, dict(type="CameraCalibrationMetric"), _check_metric),
}
