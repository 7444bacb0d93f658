"""The two-modality, two-task model, its generated data, its metric and configs; the benchmark suite."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.evaluation.metrics.bev_center_ap_metric import average_precision
from perception_mtl.registry import DATASETS, METRICS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing import config_path
from perception_mtl.testing.two_modality import two_modality_net_cfg

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _scope():
    init_default_scope("perception_mtl")


def test_dataset_is_deterministic_with_disjoint_splits_and_consistent_targets():
    train = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=8, grid_size=32))
    again = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=8, grid_size=32))
    val = DATASETS.build(dict(type="TwoModalityBEVDataset", split="val", num_samples=8, grid_size=32))
    a, b, v = train[3], again[3], val[3]
    assert torch.equal(a["inputs"]["camera"], b["inputs"]["camera"])
    assert not torch.equal(a["inputs"]["lidar"], v["inputs"]["lidar"])
    for i in range(8):
        sample = train[i]["data_samples"]
        seg = sample.gt_bev_seg
        assert not (seg[0].bool() & seg[1].bool()).any()  # walkway never overlaps the road
        assert seg[0].any()  # every scene has a road
        centers = sample.gt_centers
        assert (centers.abs() < 8.0).all()  # inside the 16 m grid
        # LiDAR sees every car: points (max height > 0.2 m) within a car length of each centre.
        lidar = train[i]["inputs"]["lidar"]
        for cx, cy in centers.tolist():
            col, row = int((cx + 8) / 0.5), int((cy + 8) / 0.5)
            window = lidar[1, max(row - 5, 0) : row + 6, max(col - 5, 0) : col + 6]
            assert window.max() > 0.1
    with pytest.raises(ValueError, match="split"):
        DATASETS.build(dict(type="TwoModalityBEVDataset", split="dev"))


def test_center_ap_by_hand():
    gt = np.array([[0.0, 0.0], [5.0, 5.0]])
    results = [(np.array([[0.1, 0.0], [5.0, 5.4], [9.0, 9.0]]), np.array([0.9, 0.5, 0.7]), gt)]
    # At 0.5 m: hit (0.9), miss (0.7), hit (0.5): precisions 1, 1/2, 2/3 at recalls 1/2, 1/2, 1.
    assert average_precision(results, 0.5) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # At 0.3 m the second centre (0.4 m away) is missed too: AP = 0.5.
    assert average_precision(results, 0.3) == pytest.approx(0.5)
    # A perfect ranking scores 1; no ground truth at all is undefined.
    assert average_precision([(gt, np.array([0.9, 0.8]), gt)], 0.5) == 1.0
    assert np.isnan(average_precision([(gt, np.array([0.9, 0.8]), np.zeros((0, 2)))], 0.5))
    metric = METRICS.build(dict(type="BEVCenterAPMetric"))
    metric.process({}, [dict(pred_centers=gt, pred_scores=np.array([0.9, 0.8]), gt_centers=gt)])
    assert metric.evaluate(1) == {"det/AP@0.5m": 1.0, "det/AP@1m": 1.0, "det/AP@2m": 1.0, "det/mAP": 1.0}


def test_model_predicts_centres_in_metres_and_maps():
    model = MODELS.build(two_modality_net_cfg(branch_channels=4, shared_channels=8))
    head = model.heads["det"]
    # A heatmap peak at cell (row 3, col 10) with offset (0.25, 0.75) decodes to
    # x = (10.25 - 8) * 0.5, y = (3.75 - 8) * 0.5 on a 16-cell grid.
    out = torch.full((1, 3, 16, 16), -10.0)
    out[0, 0, 3, 10], out[0, 1, 3, 10], out[0, 2, 3, 10] = 5.0, 0.25, 0.75
    sample = type("S", (), {})()
    head.forward = lambda feat: out
    head.predict(torch.zeros(1, 8, 16, 16), [sample])
    assert sample.pred_centers.tolist() == [[1.125, -2.125]] and sample.pred_scores.numel() == 1
    # Targets: the centre cell is exactly 1, with the sub-cell offset.
    heat, offset, mask = head.targets([torch.tensor([[1.125, -2.125]])], (16, 16), "cpu")
    assert heat[0, 0, 3, 10] == 1 and mask.sum() == 1
    assert offset[0, :, 3, 10].tolist() == pytest.approx([0.25, 0.75])
    del head.forward  # the head's own forward again
    # The map head writes per-class probabilities on the grid of the shared feature.
    model.eval()
    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=2, grid_size=16))
    batch = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), False)
    preds = model(**batch, mode="predict")
    assert (
        preds[0].pred_bev_seg.shape == (2, 16, 16)
        and 0 <= preds[0].pred_bev_seg.min() <= preds[0].pred_bev_seg.max() <= 1
    )


def test_base_model_config_is_the_testing_helpers_default():
    base = Config.fromfile(str(ROOT / "configs" / "_base_" / "models" / "two_modality_multitask_net.py")).model
    assert json.dumps(base.to_dict(), sort_keys=True) == json.dumps(two_modality_net_cfg(), sort_keys=True)


def test_init_weights_gives_encoder_and_decoder_convs_pytorchs_default_and_keeps_the_heatmap_prior():
    torch.manual_seed(0)
    model = MODELS.build(two_modality_net_cfg())
    model.init_weights()
    for part in (model.encoders, model.decoder):
        for conv in (m for m in part.modules() if isinstance(m, torch.nn.Conv2d)):
            fan_in = conv.weight[0].numel()
            # PyTorch's default is uniform within 1/sqrt(fan_in); Kaiming (fan_out, normal) exceeds it.
            assert conv.weight.abs().max() <= fan_in**-0.5, conv
    assert model.heads["det"].out.bias[0].item() == pytest.approx(-2.19)


def test_single_modality_and_task_subsets_and_bad_config():
    model = MODELS.build(two_modality_net_cfg(modalities=("lidar",), tasks=("map",)))
    assert model.fuser is None and list(model.heads) == ["map"] and model.modalities == ("lidar",)
    cfg = two_modality_net_cfg()
    with pytest.raises(ValueError, match="model.heads has none for \\['occ'\\]"):
        MODELS.build(dict(cfg, tasks=("det", "occ")))
    with pytest.raises(ValueError, match="model.fuser is required"):
        MODELS.build(dict(cfg, fuser=None))
    with pytest.raises(ValueError, match="model.fuser must be None"):
        MODELS.build(dict(cfg, encoders=dict(lidar=cfg["encoders"]["lidar"])))
    with pytest.raises(ValueError, match="model.encoders"):
        MODELS.build(dict(cfg, encoders={}))
    model = MODELS.build(cfg)
    with pytest.raises(KeyError, match="inputs have no 'camera'"):
        model(dict(lidar=torch.zeros(1, 2, 16, 16)))


@pytest.mark.parametrize("name", ["grad_balance_two_task_ew", "grad_balance_two_task_fuller"])
def test_configs_build_their_model_and_balanced_wrapper(name):
    cfg = Config.fromfile(str(config_path(f"{name}.py")))
    model = MODELS.build(cfg.model)
    wrapper_cfg = cfg.optim_wrapper.copy()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim_wrapper.optimizer.lr)
    wrapper_cfg.pop("optimizer")
    wrapper = OPTIM_WRAPPERS.build(dict(wrapper_cfg, optimizer=optimizer))
    assert type(wrapper).__name__ == "GradBalanceOptimWrapper" and wrapper.clip_grad_kwargs
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, num_samples=4))
    model.train_step(pseudo_collate([dataset[i] for i in range(4)]), wrapper)
    assert (
        "grad_balance/cos.det.map" in wrapper.last_stats
        and "grad_balance/camera_lidar_ratio.after" in wrapper.last_stats
    )


def test_benchmark_suite_reports_ratios_to_the_summed_loss():
    from benchmarks import main

    only = ["EqualWeighting", "FULLER imtl_g+mean", "PCGrad"]
    rows = main(["grad_balance", "--batch", "2", "--grid", "16", "--repeats", "1", "--warmup", "0", "--only", *only])
    assert rows[0]["method"] == "sum (OptimWrapper)" and rows[0]["step_vs_sum"] == 1.0
    assert [r["method"] for r in rows[1:]] == ["EqualWeighting", "PCGrad", "PCGrad", "FULLER imtl_g+mean"]
    assert {r["mode"] for r in rows if r["method"] == "PCGrad"} == {"rep", "param"}
    assert all(r["step_vs_sum"] > 0 for r in rows)


@pytest.mark.slow
def test_train_and_test_from_the_command_line(tmp_path):
    config = str(config_path("grad_balance_two_task_fuller.py"))
    small = [
        "train_dataloader.dataset.num_samples=32",
        "val_dataloader.dataset.num_samples=16",
        "test_dataloader.dataset.num_samples=16",
        "train_cfg.max_epochs=1",
        "default_hooks.logger.interval=1",
    ]
    run = [sys.executable, str(ROOT / "tools" / "train.py"), config, "--work-dir", str(tmp_path), "--cfg-options"]
    result = subprocess.run([*run, *small], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "grad_balance/cos.det.map" in log and "grad_balance/camera_lidar_ratio.after: 1.0000" in log
    test = [sys.executable, str(ROOT / "tools" / "test.py"), config, str(tmp_path / "epoch_1.pth")]
    result = subprocess.run(
        [*test, "--work-dir", str(tmp_path), "--cfg-options", *small], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert {"det/mAP", "det/AP@0.5m", "map/mIoU", "map/drivable_area_IoU"} <= set(metrics)
    # Resume restores the balancing state saved with the optimizer.
    ckpt = torch.load(tmp_path / "epoch_1.pth", map_location="cpu")
    assert "balancer" in ckpt["optimizer"]
