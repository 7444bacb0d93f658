"""tools/train.py under torchrun with the rendezvous arguments a multi-node job uses (c10d rendezvous
endpoint, job id, --nnodes), here one node of two CPU processes over gloo on localhost.

Same-loss-curve parity of 2 x batch 4 against 1 x batch 8 is not asserted: the detection heatmap
loss is normalised by each rank's own positives, so the two runs train on different objectives
(DDP gradient parity on a per-sample loss is tests/grad_balance/test_grad_balance_ddp.py).
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
