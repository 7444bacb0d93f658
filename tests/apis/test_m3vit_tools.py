"""The M³ViT multi-task model through tools/train.py and tools/test.py, as a user runs them."""

import json
import pathlib
import subprocess
import sys

import pytest

from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = [
    "train_dataloader.dataset.num_samples=8",
    "train_dataloader.batch_size=4",
    "val_dataloader.dataset.num_samples=4",
    "test_dataloader.dataset.num_samples=4",
    "train_dataloader.dataset.img_size=32",
    "val_dataloader.dataset.img_size=32",
    "test_dataloader.dataset.img_size=32",
    "model.backbone.img_size=32",
    "model.backbone.depth=2",
    "model.backbone.embed_dim=24",
    "model.backbone.out_indices=[0,1]",
    "model.backbone.feature_scales=[2.0,1.0]",
    "train_cfg.max_epochs=1",
    "default_hooks.logger.interval=1",
    "custom_hooks.0.interval=1",
]


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("config", ["m3vit_demo.py", "m3vit_task-cond-router_demo.py", "m3vit_dense-baseline_demo.py"])
def test_train_then_test_with_per_task_metrics(tmp_path, config):
    work = tmp_path / "work"
    moe = "dense" not in config
    options = TINY + (["model.backbone.moe_cfg.num_experts=4", "model.backbone.moe_cfg.top_k=2"] if moe else [])
    log = _run("train.py", str(config_path(config)), "--work-dir", str(work), "--cfg-options", *options)
    assert "seg.loss_ce" in log and "depth.loss_log_l1" in log and "edge.loss_bce" in log
    assert ("moe.loss_balance" in log) == moe and ("moe.seg.entropy" in log) == moe
    if moe:
        (stats_file,) = work.glob("*/moe_expert_stats.jsonl")
        record = json.loads(stats_file.read_text().splitlines()[0])
        assert {row["task"] for row in record["load_table"]} == {"seg", "depth", "edge"}
    _run(
        "test.py",
        str(config_path(config)),
        str(work / "epoch_1.pth"),
        "--work-dir",
        str(work),
        "--cfg-options",
        *options,
    )
    metrics = json.loads((work / "test_metrics.json").read_text())
    for key in ("seg/mIoU", "seg/aAcc", "depth/abs_rel", "depth/rmse", "depth/delta1", "edge/ODS_F"):
        assert key in metrics and metrics[key] is not None
