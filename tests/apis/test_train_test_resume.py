"""tools/train.py and tools/test.py end to end, including --resume, as a user runs them."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

import perception_mtl  # noqa: F401  (lets torch.load read MMEngine checkpoints safely)
from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The smallest real job (data generated on the fly), shrunk: 32 samples at batch 8 on a 16-cell grid,
# 4 iterations per epoch.
CONFIG = str(config_path("grad_balance_two_task_ew.py"))
SMALL = [
    "train_dataloader.dataset.num_samples=32",
    "train_dataloader.dataset.grid_size=16",
    "train_dataloader.batch_size=8",
    "val_dataloader.dataset.num_samples=8",
    "val_dataloader.dataset.grid_size=16",
    "test_dataloader.dataset.num_samples=8",
    "test_dataloader.dataset.grid_size=16",
    "default_hooks.logger.interval=1",
]
ITERS_PER_EPOCH = 4


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def _adam_steps(ckpt):
    return {int(s["step"]) for s in ckpt["optimizer"]["state"].values()}


@pytest.mark.slow
def test_train_two_epochs_then_resume_a_third(tmp_path):
    work = str(tmp_path / "work")
    _run("train.py", CONFIG, "--work-dir", work, "--cfg-options", *SMALL, "train_cfg.max_epochs=2")
    ckpt2 = torch.load(f"{work}/epoch_2.pth", map_location="cpu")  # safe loader, no weights_only=False
    assert ckpt2["meta"]["epoch"] == 2 and ckpt2["meta"]["iter"] == 2 * ITERS_PER_EPOCH
    assert _adam_steps(ckpt2) == {2 * ITERS_PER_EPOCH}

    log = _run("train.py", CONFIG, "--work-dir", work, "--resume", "--cfg-options", *SMALL, "train_cfg.max_epochs=3")
    assert "resumed epoch: 2, iter: 8" in log
    assert "Epoch(train) [3][4/4]" in log and "Epoch(train) [1]" not in log  # only the third epoch ran
    ckpt3 = torch.load(f"{work}/epoch_3.pth", map_location="cpu")
    assert ckpt3["meta"]["epoch"] == 3 and ckpt3["meta"]["iter"] == 3 * ITERS_PER_EPOCH
    # Optimizer state continued: AdamW's step count grew from 8 to 12 instead of restarting at 4.
    assert _adam_steps(ckpt3) == {3 * ITERS_PER_EPOCH}
    # Resume from an explicit path works too (and never reruns finished epochs).
    log = _run(
        "train.py",
        CONFIG,
        "--work-dir",
        work,
        "--resume",
        f"{work}/epoch_3.pth",
        "--cfg-options",
        *SMALL,
        "train_cfg.max_epochs=3",
    )
    assert "resumed epoch: 3, iter: 12" in log

    out = str(tmp_path / "test")
    _run("test.py", CONFIG, f"{work}/epoch_3.pth", "--work-dir", out, "--cfg-options", *SMALL)
    metrics = json.loads(pathlib.Path(out, "test_metrics.json").read_text())
    assert set(metrics) >= {"det/mAP", "map/drivable_area_IoU", "map/walkway_IoU", "map/mIoU"}
    assert 0.0 <= metrics["map/mIoU"] <= 1.0 and 0.0 <= metrics["det/mAP"] <= 1.0


def test_help_works_from_tools_and_module():
    assert "--resume" in _run("train.py", "--help")
    assert "--cfg-options" in _run("test.py", "--help")
    result = subprocess.run(
        [sys.executable, "-m", "perception_mtl.train", "--help"], capture_output=True, text=True, check=True
    )
    assert "--launcher" in result.stdout


def test_missing_inputs_are_named(tmp_path):
    for args in (["train.py", "configs/nope.py"], ["test.py", CONFIG, str(tmp_path / "missing.pth")]):
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / args[0]), *args[1:]], capture_output=True, text=True
        )
        assert result.returncode != 0
        assert args[-1].split("/")[-1] in result.stderr


def test_amp_switches_the_wrapper_or_says_why_not():
    from perception_mtl.apis.train import enable_amp, load_config

    # The config's balancing wrapper has an AMP twin on CPU too (bfloat16 autocast).
    cfg = load_config(CONFIG, None, None, "none")
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == "GradBalanceAmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"
    # MMEngine's plain wrapper (the summed loss) has a GPU-only one.
    cfg = load_config(CONFIG, None, None, "none")
    cfg.optim_wrapper = dict(type="OptimWrapper", optimizer=cfg.optim_wrapper.optimizer)
    if torch.cuda.is_available():
        enable_amp(cfg)
        assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    else:
        with pytest.raises(RuntimeError, match="CUDA"):
            enable_amp(cfg)


@pytest.mark.gpu
@pytest.mark.slow
def test_amp_training_on_gpu(tmp_path):
    work = str(tmp_path / "amp")
    _run("train.py", CONFIG, "--work-dir", work, "--amp", "--cfg-options", *SMALL, "train_cfg.max_epochs=1")
    ckpt = torch.load(f"{work}/epoch_1.pth", map_location="cpu")
    assert "loss_scaler" in ckpt["optimizer"]


@pytest.mark.slow
def test_torchrun_two_processes_split_the_data(tmp_path):
    """--launcher pytorch under torchrun; on a CPU-only machine it runs over gloo."""
    work = str(tmp_path / "ddp")
    result = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
            str(ROOT / "tools" / "train.py"), CONFIG, "--launcher", "pytorch", "--work-dir", work,
            "--cfg-options", *SMALL, "train_cfg.max_epochs=1",
        ],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    log = result.stdout + result.stderr
    assert "Distributed training: True" in log
    # 32 samples at batch 8 over 2 processes: 2 iterations per epoch instead of 4.
    assert "Epoch(train) [1][2/2]" in log
    assert torch.load(f"{work}/epoch_1.pth", map_location="cpu")["meta"]["iter"] == 2
