"""Staged training of MultiTaskBEVModel: a previous stage's checkpoint initialises the parts a config keeps."""

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.registry import MODELS
from perception_mtl.testing.bev import model_cfg


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")


def _built(seed: int, **extra):
    torch.manual_seed(seed)
    model = MODELS.build({**model_cfg(("lidar",), None), **extra})
    model.init_weights()
    return model


def _save(model, path) -> str:
    torch.save({"meta": {}, "state_dict": model.state_dict()}, path)
    return str(path)


def test_kept_parts_load_and_the_rest_stays_new(tmp_path):
    stage1 = _built(0)
    ckpt = _save(stage1, tmp_path / "det.pth")
    stage2 = _built(1, init_from_stage=dict(checkpoint=ckpt, keep=("encoders", "decoder")))
    fresh = _built(1)
    for key, value in stage2.state_dict().items():
        if key.startswith(("encoders.", "decoder.")):
            assert torch.equal(value, stage1.state_dict()[key]), key
        else:
            assert torch.equal(value, fresh.state_dict()[key]), key  # the head kept its initialisation
    report = stage2.load_stage(ckpt, keep=("encoders", "decoder"))
    assert report["loaded"] and all(k.startswith(("encoders.", "decoder.")) for k in report["loaded"])
    assert report["new"] and all(k.startswith("heads.") for k in report["new"])
    assert report["dropped"] == report["new"]  # the checkpoint's head was not kept


def test_checkpoint_of_another_shape_names_the_key(tmp_path):
    other = MODELS.build(model_cfg(("lidar",), None))
    state = other.state_dict()
    key = next(k for k in state if k.startswith("decoder.") and state[k].ndim == 4)
    state[key] = torch.zeros(1, *state[key].shape[1:])
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        _built(0, init_from_stage=dict(checkpoint=str(path), keep=("decoder",)))


def test_missing_checkpoint_path_is_a_config_error():
    with pytest.raises(ValueError, match="init_from_stage.checkpoint"):
        MODELS.build({**model_cfg(("lidar",), None), "init_from_stage": dict(keep=("decoder",))})
