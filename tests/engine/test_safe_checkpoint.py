"""torch's safe loader accepts MMEngine's own checkpoint objects and still refuses others."""

import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import perception_mtl  # noqa: F401  (installs the allow-list on import)


class _NotAllowed:
    def __init__(self):
        self.x = 1


def test_message_hub_state_round_trips_with_weights_only(tmp_path):
    hub = MessageHub.get_instance("safe_checkpoint_test")
    for i in range(5):
        hub.update_scalar("train/loss", 1.0 / (i + 1))
    hub.update_info("epoch", 3, resumed=True)
    state = {"meta": {"epoch": 3, "iter": 12, "seed": np.int64(7)}, "message_hub": hub.state_dict()}
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    loaded = torch.load(path)  # weights_only is the default on torch >= 2.6
    buffer = loaded["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == pytest.approx(0.2)
    assert buffer.statistics("mean", 5) == pytest.approx(sum(1 / (i + 1) for i in range(5)) / 5)
    assert loaded["meta"]["seed"] == 7


def test_arbitrary_classes_are_still_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"payload": _NotAllowed()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


@pytest.mark.parametrize(
    "content, why",
    [
        (b"epoch 3 finished\n", "not a torch checkpoint, or truncated"),  # torch: KeyError: 101 or similar
        (None, "not a torch checkpoint, or truncated"),  # the first half of a real checkpoint
        (b"", "the file is empty"),
    ],
)
def test_unreadable_checkpoints_name_the_file(tmp_path, content, why):
    from mmengine.runner.checkpoint import _load_checkpoint

    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=f"cannot read checkpoint {path}: {why}"):
        _load_checkpoint(str(path), map_location="cpu")
