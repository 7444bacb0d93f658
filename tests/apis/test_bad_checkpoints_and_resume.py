"""tools/test.py refuses another model's checkpoint; --resume finds a good checkpoint or says why not."""

import os
import pathlib
import subprocess
import sys
import time

import pytest
import torch

import perception_mtl  # noqa: F401
from perception_mtl.apis.train import find_resume_checkpoint
from perception_mtl.apis.train import main as train_main
from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = str(config_path("grad_balance_two_task_ew.py"))
TINY_TRAIN = [
    "train_dataloader.dataset.num_samples=8",
    "train_dataloader.dataset.grid_size=16",
    "train_cfg.max_epochs=1",
]
SMALL = ["test_dataloader.dataset.num_samples=8", "test_dataloader.dataset.grid_size=16"]


def test_another_models_checkpoint_is_refused_and_metrics_are_kept(tmp_path):
    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": {f"other_net.layer{i}.weight": torch.randn(2, 2) for i in range(8)}}, ckpt)
    metrics = tmp_path / "test_metrics.json"
    metrics.write_text('{"map/mIoU": 0.5}')
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "test.py"), CONFIG, str(ckpt), "--work-dir", str(tmp_path),
         "--cfg-options", *SMALL],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"ValueError: checkpoint {ckpt} does not match the model" in result.stderr
    assert "missing keys (e.g. " in result.stderr and "8 unexpected keys (e.g. other_net.layer0.weight" in result.stderr
    assert metrics.read_text() == '{"map/mIoU": 0.5}'  # the earlier result is untouched


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no checkpoint to resume from in work dir {tmp_path}"):
        train_main([CONFIG, "--work-dir", str(tmp_path), "--resume", "--cfg-options", *TINY_TRAIN])
    assert not any(p.name.endswith(".pth") for p in tmp_path.iterdir())


def test_empty_last_checkpoint_falls_back_to_the_newest_whole_one(tmp_path):
    for name in ("epoch_1.pth", "epoch_2.pth"):
        torch.save({"meta": {"epoch": int(name[6])}}, tmp_path / name)
        time.sleep(0.01)
    (tmp_path / "epoch_3.pth").write_bytes((tmp_path / "epoch_2.pth").read_bytes()[:100])  # truncated: skipped
    (tmp_path / "last_checkpoint").write_text("")
    with pytest.warns(UserWarning, match="last_checkpoint is empty; resuming from the newest whole checkpoint"):
        assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / "epoch_2.pth")
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth"))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / "epoch_1.pth")  # a good pointer is kept
