"""The MOS demo through tools/create_data.py, tools/train.py and tools/test.py, as a user runs them;
and the ``mos`` benchmark suite."""

import json
import pathlib
import subprocess
import sys

import pytest

from benchmarks import main as benchmark
from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


WORKERS_OFF = ("num_workers=0", "persistent_workers=False")  # the full config asks for 4 / 2 workers


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["mos_face_pose_demo.py", "mos_face_pose.py"])
def test_config_trains_and_tests(tmp_path, config_name):
    data = tmp_path / "faces"
    _run(
        "create_data.py", "faces", "--out-dir", str(data), "--num-train", "4", "--num-val", "2", "--num-pose-eval", "0"
    )
    options = [
        f"train_dataloader.dataset.data_root={data}",
        f"val_dataloader.dataset.data_root={data}",
        f"test_dataloader.dataset.data_root={data}",
        "train_dataloader.batch_size=2",
        "val_dataloader.batch_size=2",
        "test_dataloader.batch_size=2",
        *[f"{split}_dataloader.{key}" for split in ("train", "val", "test") for key in WORKERS_OFF],
        "train_cfg.max_epochs=1",
        "train_cfg.val_interval=1",
        "default_hooks.checkpoint.interval=1",
        "default_hooks.logger.interval=1",
    ]
    config = str(config_path(config_name))
    log = _run("train.py", config, "--work-dir", str(tmp_path / "work"), "--cfg-options", *options)
    for key in ("face.loss_cls", "landmark.loss", "pose.loss_cls", "uncertainty.loss", "face/AP_easy"):
        assert key in log
    _run(
        "test.py",
        config,
        str(tmp_path / "work" / "epoch_1.pth"),
        "--work-dir",
        str(tmp_path / "work"),
        "--cfg-options",
        *options,
    )
    metrics = json.loads((tmp_path / "work" / "test_metrics.json").read_text())
    assert {"face/AP_easy", "face/AP_medium", "face/AP_hard", "face/NME", "face/yaw_MAE", "face/pose_MAE"} <= set(
        metrics
    )


def test_mos_benchmark_suite_prints_ratios():
    rows = benchmark(["mos", "--img-size", "64", "--repeats", "1", "--no-flops"])
    assert rows[0]["latency_vs_mos_m"] == 1.0 and rows[0]["img"] == "64x64"
    assert rows[2]["params_M"] < rows[0]["params_M"]  # the demo model is smaller
