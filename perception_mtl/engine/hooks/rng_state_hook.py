"""Saves the random number generators' state in every checkpoint and restores it on resume.

MMEngine's ``Runner.resume`` restores the model, optimizer, schedulers, epoch/iteration and the
message hub, and data order follows (``DefaultSampler`` shuffles with ``seed + epoch``), but the
global RNGs (Python ``random``, numpy, torch CPU and CUDA) restart from the seed. Anything that
draws from them during training (dropout, modality dropout, random augmentation, the DataLoader's
worker base seed) then draws different numbers after a resume than the uninterrupted run did, so
the resumed run reaches different weights. This hook:

* writes the generators' state into the checkpoint (``checkpoint['rng_state']``) when it is saved;
* on ``--resume`` puts it back just before training continues (``before_train``, after MMEngine's
  resume has finished, which may itself reseed);
* keeps validation from moving the training stream: the state is taken before a validation run
  and put back after it. The checkpoint is saved before validation runs, so without this an
  uninterrupted run would train its next epoch on a stream that validation had advanced and a
  resumed one on the saved stream. (It also makes training independent of ``val_interval``.)

All ranks restore the saved (rank 0) state, which is each rank's own state when ranks share the
seed (MMEngine's default, ``randomness.diff_rank_seed=False``). With ``diff_rank_seed=True`` the
ranks other than 0 keep their freshly seeded state and a warning says so.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log

from perception_mtl.registry import HOOKS


def get_rng_state() -> dict:
    """The state of Python's, numpy's and torch's global generators, as tensors and plain ints
    (so MMEngine's weights-only checkpoint loading reads it back)."""
    py_version, py_keys, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = dict(
        python=dict(version=py_version, keys=torch.tensor(py_keys, dtype=torch.int64), gauss=py_gauss),
        numpy=dict(
            name=str(np_name),
            keys=torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            pos=int(np_pos),
            has_gauss=int(np_has_gauss),
            gauss=float(np_gauss),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Puts back a state taken by :func:`get_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(k) for k in py["keys"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            print_log(
                f"RNGStateHook: the checkpoint holds {len(cuda)} CUDA generator states but "
                f"{torch.cuda.device_count()} devices are visible; CUDA generators keep their seeded state",
                logger="current",
                level=logging.WARNING,
            )


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Checkpoints the global RNG state and restores it on resume (see the module docstring).

    Runs at the lowest priority so that the checkpoint hook has saved and every other hook has
    drawn before the state is taken or restored.
    """

    priority = "LOWEST"

    def __init__(self) -> None:
        self._resumed_state: dict | None = None
        self._before_val: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["rng_state"] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Only a resume continues the stream; load_from (fine-tuning) starts a new run.
        if not getattr(runner, "_resume", False):
            return
        if "rng_state" not in checkpoint:
            print_log(
                "RNGStateHook: the resumed checkpoint has no 'rng_state' (saved without this hook); "
                "random draws after the resume will differ from an uninterrupted run",
                logger="current",
                level=logging.WARNING,
            )
            return
        self._resumed_state = checkpoint["rng_state"]

    def before_train(self, runner) -> None:
        if self._resumed_state is None:
            return
        state, self._resumed_state = self._resumed_state, None
        if get_rank() != 0 and runner.cfg.get("randomness", {}).get("diff_rank_seed", False):
            print_log(
                "RNGStateHook: randomness.diff_rank_seed=True; only rank 0's generators are checkpointed, "
                "so this rank keeps its freshly seeded state",
                logger="current",
                level=logging.WARNING,
            )
            return
        set_rng_state(state)
        print_log("RNGStateHook: restored the random generators' state from the checkpoint", logger="current")

    def before_val(self, runner) -> None:
        self._before_val = get_rng_state()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None
