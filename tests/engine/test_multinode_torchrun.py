"""tools/train.py under torchrun with the rendezvous arguments a multi-node job uses (c10d rendezvous
endpoint, job id, --nnodes), here one node of two CPU processes over gloo on localhost.

Parity of 2 x batch 4 against 1 x batch 8 is asserted on the map task alone: the detection heatmap
loss is normalised by each rank's own positives, so with it the two splits train on different objectives.
"""

import os
import pathlib
import socket
import subprocess
import sys

import pytest
import torch

import perception_mtl  # noqa: F401  (safe torch.load of MMEngine checkpoints)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = str(pathlib.Path(__file__).resolve().parent / "configs" / "multinode_tiny.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_with_c10d_rendezvous_trains_two_ranks(tmp_path):
    work = tmp_path / "work"
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        # On N machines: --nnodes=N and the same --rdzv-endpoint=<host of rank 0>:<port> on each.
        "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--rdzv-id=perception-mtl-test",
        str(ROOT / "tools" / "train.py"), CONFIG, "--launcher", "pytorch", "--work-dir", str(work),
        "--cfg-options", "train_dataloader.batch_size=4",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Distributed training: True" in log
    # 16 samples, batch 4 on each of 2 ranks: 2 iterations per epoch, 4 in all.
    assert "Epoch(train) [2][2/2]" in log and "[1][3/" not in log
    ckpt = torch.load(work / "epoch_2.pth", map_location="cpu")
    assert ckpt["meta"]["iter"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


@pytest.mark.slow
def test_two_gloo_ranks_follow_one_process_with_the_same_total_batch(tmp_path):
    """2 ranks x batch 4 reach the weights of 1 process x batch 8 after 4 iterations (the same training
    curve). Map task only: its BCE is a per-pixel mean, so each rank's half-batch mean, averaged by DDP,
    is the full batch's mean; GroupNorm keeps no batch statistics. (The detection heatmap loss is
    normalised by each rank's own positives, a different objective per split.)"""
    only_map = ["model.tasks=['map']", "optim_wrapper.tasks=['map']", "default_hooks.checkpoint.interval=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one, two = tmp_path / "one", tmp_path / "two"
    single = [sys.executable, str(ROOT / "tools" / "train.py"), CONFIG, "--work-dir", str(one), "--cfg-options",
              *only_map]  # fmt: skip
    ddp = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--rdzv-id=perception-mtl-parity",
        str(ROOT / "tools" / "train.py"), CONFIG, "--launcher", "pytorch", "--work-dir", str(two),
        "--cfg-options", "train_dataloader.batch_size=4", *only_map,
    ]  # fmt: skip
    for cmd in (single, ddp):
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    a = torch.load(one / "epoch_2.pth", map_location="cpu")
    b = torch.load(two / "epoch_2.pth", map_location="cpu")
    assert a["meta"]["iter"] == b["meta"]["iter"] == 4
    sa, sb = a["state_dict"], b["state_dict"]
    assert sorted(sa) == sorted(sb) and not any(k.startswith("heads.det") for k in sa)
    diff = max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa if sa[k].is_floating_point())
    first = torch.load(one / "epoch_1.pth", map_location="cpu")["state_dict"]
    moved = max(float((sa[k].float() - first[k].float()).abs().max()) for k in sa if sa[k].is_floating_point())
    assert moved > 1e-3  # the second epoch trained: equal weights are not two idle runs
    assert diff <= 1e-5, f"2 x 4 and 1 x 8 differ by {diff:.3g} after 4 iterations"
