"""Checkpoints are written atomically, and a misspelt checkpoint option fails before training."""

import os
import subprocess
import sys

import pytest
import torch

import perception_mtl  # noqa: F401  (safe checkpoint loading)
from perception_mtl.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook, atomic_save_checkpoint
from perception_mtl.testing import config_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "epoch_1.pth")
    atomic_save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def crash(obj, f):  # writes half a checkpoint, then the process "dies"
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["state_dict"]["w"], torch.ones(3))  # the previous one, whole
    assert os.listdir(tmp_path) == ["epoch_1.pth"]  # no temporary file left behind
    # A crash during the first save leaves nothing under the final name.
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_checkpoint({}, str(tmp_path / "epoch_2.pth"))
    assert os.listdir(tmp_path) == ["epoch_1.pth"]


def test_unknown_option_is_refused_with_a_suggestion():
    with pytest.raises(TypeError, match=r"unknown option 'intervall' \(did you mean 'interval'\?\)"):
        AtomicCheckpointHook(intervall=1)
    assert AtomicCheckpointHook(interval=2, max_keep_ckpts=1).interval == 2


def test_misspelt_hook_option_fails_before_training(tmp_path):
    result = subprocess.run(
        [
            sys.executable, os.path.join(ROOT, "tools", "train.py"), str(config_path("grad_balance_two_task_ew.py")),
            "--work-dir", str(tmp_path), "--cfg-options", "default_hooks.checkpoint.intervall=1",
            "train_dataloader.dataset.num_samples=8", "train_dataloader.dataset.grid_size=16",
        ],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown option 'intervall'" in result.stderr
    assert "Epoch(train)" not in result.stdout + result.stderr  # nothing was trained
