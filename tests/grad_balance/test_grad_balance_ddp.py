"""Balancing under DDP (two CPU processes over gloo, via torchrun).

In 'rep' mode the all-reduced Gram matrix makes two ranks on half batches train exactly like one
process on the whole batch, and DDP still all-reduces the gradients once per step (the same
number of bucket all-reduces as the summed loss), plus one small all-reduce of the statistics.
"""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
WORKER = str(HERE / "ddp_worker.py")


def _run(out, balancing, ranks, port):
    cmd = [sys.executable, WORKER, str(out), json.dumps(balancing)]
    if ranks == 1:
        cmd.append("single")
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks)]
        cmd = [*launcher, "--master_port", str(port), *cmd[1:]]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out, map_location="cpu")


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_one_gradient_all_reduce(tmp_path):
    balancing = dict(type="FULLER", inter="pcgrad", intra=None)
    ddp = _run(tmp_path / "ddp.pt", balancing, 2, 29631)
    single = _run(tmp_path / "single.pt", balancing, 1, 0)
    for name, value in single["params"].items():
        assert torch.allclose(ddp["params"][name], value, atol=1e-6), name
    for key, value in single["stats"][-1].items():  # the ranks agree on the global statistics
        assert ddp["stats"][-1][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    plain = _run(tmp_path / "plain.pt", {}, 2, 29632)
    assert ddp["bucket_allreduces"] == plain["bucket_allreduces"] > 0
    assert ddp["other_allreduces"] == plain["other_allreduces"] + ddp["steps"]


@pytest.mark.slow
def test_param_mode_and_intra_balancing_run_under_ddp(tmp_path):
    plain = _run(tmp_path / "plain.pt", {}, 2, 29633)
    for i, balancing in enumerate(
        (dict(type="PCGrad", mode="param"), dict(type="FULLER", intra="ema"), dict(type="UncertaintyWeighting"))
    ):
        out = _run(tmp_path / f"{i}.pt", balancing, 2, 29634 + i)
        assert out["bucket_allreduces"] == plain["bucket_allreduces"], balancing
        assert all(torch.isfinite(v).all() for v in out["params"].values())
