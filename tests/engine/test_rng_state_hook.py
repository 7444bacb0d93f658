"""RNGStateHook: the generators' state round-trips through a checkpoint and validation does not move it."""

import io
import random
from types import SimpleNamespace

import numpy as np
import torch

import perception_mtl  # noqa: F401  (safe torch.load of MMEngine checkpoints)
from perception_mtl.engine.hooks.rng_state_hook import RNGStateHook, get_rng_state, set_rng_state


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_state_survives_a_weights_only_checkpoint_round_trip():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _draw()
    buf = io.BytesIO()
    torch.save({"rng_state": get_rng_state()}, buf)
    expected = _draw()
    _draw()  # move on, as a crashed run would have
    buf.seek(0)
    set_rng_state(torch.load(buf, map_location="cpu", weights_only=True)["rng_state"])
    assert _draw() == expected


def test_resume_restores_at_before_train_and_load_from_does_not():
    hook = RNGStateHook()
    torch.manual_seed(3)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = _draw()
    runner = SimpleNamespace(_resume=False, cfg={})
    hook.after_load_checkpoint(runner, checkpoint)  # load_from: a new run, nothing restored
    hook.before_train(runner)
    assert _draw() != expected
    runner._resume = True
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert _draw() == expected


def test_validation_does_not_move_the_training_stream():
    hook = RNGStateHook()
    torch.manual_seed(5)
    hook.before_val(None)
    expected = _draw()
    _draw()  # validation draws (DataLoader base seed, random test-time choices)
    hook.after_val(None)
    assert _draw() == expected
