"""UGCL through tools/train.py and tools/test.py, as a user runs them (tiny generated data and model)."""

import json
import pathlib
import subprocess
import sys

import pytest

from perception_mtl.testing import config_path
from perception_mtl.testing.camera_calibration import tiny_cvgl_root

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


# The demo config with a shrunk model; the full config (ResNet-18 trunk) as it is.
TINY_MODEL = [
    "model.backbone.model_name=test_resnet",
    "model.backbone.out_indices=[1,3]",
    "model.max_disp=4",
    "model.fusion_channels=16",
    "model.pool_size=[2,2]",
    "model.head.hidden_channels=[16]",
]


@pytest.mark.slow
@pytest.mark.parametrize("config_name, model_options", [("ugcl_calib_demo.py", TINY_MODEL), ("ugcl_calib.py", [])])
def test_config_trains_and_tests_with_per_parameter_mae(tmp_path, config_name, model_options):
    data = tiny_cvgl_root()
    options = [f"{split}_dataloader.dataset.data_root={data}" for split in ("train", "val", "test")] + [
        "train_dataloader.batch_size=3",
        *model_options,
        "train_cfg.max_epochs=1",
        "train_cfg.val_interval=1",
        "default_hooks.logger.interval=1",
        "default_hooks.checkpoint.interval=1",
    ]
    config = str(config_path(config_name))
    work = tmp_path / "work"
    log = _run("train.py", config, "--work-dir", str(work), "--cfg-options", *options)
    assert "calib.loss_fx" in log and "calib.loss_vp" in log and "calib.loss_det" in log
    _run("test.py", config, str(work / "epoch_1.pth"), "--work-dir", str(work), "--cfg-options", *options)
    metrics = json.loads((work / "test_metrics.json").read_text())
    names = ("fx", "fy", "u0", "v0", "baseline", "disparity", "tx", "ty", "tz", "pitch", "fx_pct")
    assert all(isinstance(metrics[f"calib/{n}"], float) for n in names)
    assert metrics["calib/num_samples"] == 3
