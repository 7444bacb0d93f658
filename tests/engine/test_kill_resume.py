"""``kill -9`` mid-epoch, then ``--resume``: the run ends on the same weights as an uninterrupted one.

A real ``tools/train.py`` subprocess trains the tiny config (tests/engine/configs/kill_resume_tiny.py,
CPU, deterministic, modality dropout drawing from torch's generator every step) and is killed with
SIGKILL in the middle of epoch 2, after ``epoch_1.pth`` exists. ``--resume`` continues from it;
model, optimizer, scheduler, iteration, RNG (RNGStateHook) and data order (the sampler's
seed + epoch) must all come back for the final weights to match a run that was never interrupted.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import torch

import perception_mtl  # noqa: F401  (safe torch.load of MMEngine checkpoints)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = str(pathlib.Path(__file__).resolve().parent / "configs" / "kill_resume_tiny.py")
ITERS_PER_EPOCH = 16
MAX_EPOCHS = 3


def _train_cmd(work_dir, *extra):
    return [sys.executable, str(ROOT / "tools" / "train.py"), CONFIG, "--work-dir", str(work_dir), *extra]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _start(work_dir, *extra):
    return subprocess.Popen(
        _train_cmd(work_dir, *extra), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _kill_mid_epoch_2(proc, work_dir, timeout=240.0):
    """Reads the log until epoch 2 has trained a couple of iterations, then SIGKILLs the process.
    Returns the log read so far."""
    seen = []
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"Epoch\(train\)\s+\[2\]\[\s*2/{ITERS_PER_EPOCH}\]")
    for line in proc.stdout:
        seen.append(line)
        if pattern.search(line):
            assert (work_dir / "epoch_1.pth").is_file(), "epoch 2 started without epoch_1.pth"
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "training never reached epoch 2:\n" + "".join(seen[-40:])
    else:
        raise AssertionError(f"train.py ended (rc {proc.wait()}) before epoch 2:\n" + "".join(seen[-40:]))
    proc.stdout.close()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    return "".join(seen)


def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    ref_dir, killed_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    # The reference and the run to kill go side by side (one thread each).
    reference = subprocess.Popen(
        _train_cmd(ref_dir), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        log = _kill_mid_epoch_2(_start(killed_dir), killed_dir)
        ref_log = reference.communicate(timeout=300)[0]
    finally:
        if reference.poll() is None:
            reference.kill()
    assert reference.returncode == 0, ref_log[-3000:]

    # Killed mid-epoch: epoch 2 had started and never finished; epoch 1's checkpoint is whole.
    assert f"[2][ 2/{ITERS_PER_EPOCH}]" in log or f"[2][2/{ITERS_PER_EPOCH}]" in log
    assert not (killed_dir / "epoch_2.pth").exists()

    resumed = subprocess.run(_train_cmd(killed_dir, "--resume"), cwd=ROOT, env=_env(), capture_output=True, text=True)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f"resumed epoch: 1, iter: {ITERS_PER_EPOCH}" in out
    assert "restored the random generators' state" in out
    assert "Epoch(train) [1]" not in out  # epoch 1 is not trained again

    ref = torch.load(ref_dir / f"epoch_{MAX_EPOCHS}.pth", map_location="cpu")
    got = torch.load(killed_dir / f"epoch_{MAX_EPOCHS}.pth", map_location="cpu")
    assert got["meta"]["iter"] == ref["meta"]["iter"] == MAX_EPOCHS * ITERS_PER_EPOCH
    assert ref["state_dict"].keys() == got["state_dict"].keys()
    diffs = {
        k: (ref["state_dict"][k].double() - got["state_dict"][k].double()).abs().max().item()
        for k in ref["state_dict"]
        if ref["state_dict"][k].is_floating_point()
    }
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= 1e-6, f"weights differ after kill -9 + resume: {worst} by {diffs[worst]:.3g}"
    # Optimizer moments and step counts, scheduler position and the generators agree too.
    for (_, a), (_, b) in zip(
        sorted(ref["optimizer"]["state"].items()), sorted(got["optimizer"]["state"].items()), strict=True
    ):
        for key in a:
            assert torch.allclose(torch.as_tensor(a[key]).double(), torch.as_tensor(b[key]).double(), atol=1e-6)
    assert [s["last_step"] for s in ref["param_schedulers"]] == [s["last_step"] for s in got["param_schedulers"]]
    assert torch.equal(ref["rng_state"]["torch"], got["rng_state"]["torch"])
