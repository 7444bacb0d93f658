"""TaskChannelScaling: the gate formula by hand, the start near 1 (also after a parent's init), one task's
loss trains only that task's gate, errors, ONNX export, and the gate inside MultiTaskBEVModel."""

import numpy as np
import pytest
import torch
from mmengine.model import BaseModule
from mmengine.registry import init_default_scope

from perception_mtl.deploy import export_onnx
from perception_mtl.models.necks.task_channel_scaling import TaskChannelScaling
from perception_mtl.registry import MODELS
from perception_mtl.testing import check_model_trains
from perception_mtl.testing.bev import model_cfg, random_batch

C, H = 8, 6


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def _feat(batch=2, size=5):
    return torch.randn(batch, C, size, size) + torch.linspace(-1, 1, C)[None, :, None, None]


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / np.sqrt(2.0)))


def _gate_by_hand(tcs, feat, task):
    """max_scale * sigmoid(W2 GELU(W1 mean_yx(feat) + b1) + b2): (B, C)."""
    mlp = tcs.gates[task]
    pooled = feat.sum((2, 3)) / (feat.shape[2] * feat.shape[3])
    hidden = _gelu(pooled @ mlp.fc1.weight.T + mlp.fc1.bias)
    return tcs.max_scale / (1 + torch.exp(-(hidden @ mlp.fc2.weight.T + mlp.fc2.bias)))


def _randomise(tcs):
    with torch.no_grad():
        for p in tcs.parameters():
            p.normal_(0, 0.5)
    return tcs


def test_output_is_the_feature_times_the_tasks_gate_by_hand():
    tcs, feat = _randomise(TaskChannelScaling(C, H)), _feat()
    with torch.no_grad():
        for task in ("det", "map", "occ"):
            gate = _gate_by_hand(tcs, feat, task)
            assert torch.allclose(tcs.gate(feat, task), gate, atol=1e-6)
            assert torch.allclose(tcs(feat, task), feat * gate[:, :, None, None], atol=1e-6)
        outs = tcs.forward_all(feat)
        assert list(outs) == ["det", "map", "occ"]
        assert all(o.shape == feat.shape for o in outs.values())
        assert torch.equal(outs["map"], tcs(feat, "map"))
        # Per sample and per task: the gate depends on the sample's own pooled feature and on the task.
        assert not torch.allclose(tcs.gate(feat, "det")[0], tcs.gate(feat, "det")[1])
        assert not torch.allclose(outs["det"], outs["occ"])


def test_gates_start_near_one_and_a_plain_sigmoid_near_one_half():
    feat = _feat() * 2 + 1
    gates = torch.stack([TaskChannelScaling(C, H).gate(feat, t) for t in ("det", "map", "occ")])
    assert (gates - 1).abs().max() < 0.02 and gates.std() > 0  # near 1, not constant
    half = TaskChannelScaling(C, H, max_scale=1.0).gate(feat, "det")
    assert (half - 0.5).abs().max() < 0.01


def test_a_parents_init_cfg_does_not_move_the_gates_but_its_own_does():
    class Parent(BaseModule):
        def __init__(self, tcs_cfg):
            super().__init__(init_cfg=dict(type="Normal", layer="Linear", std=1.0, bias=3.0))
            self.tcs = TaskChannelScaling(C, H, **tcs_cfg)

    feat = _feat()
    parent = Parent({})
    parent.init_weights()
    fc2 = parent.tcs.gates["det"].fc2
    assert torch.all(fc2.bias == 0) and fc2.weight.abs().max() < 0.05  # N(0, 0.01^2), not the parent's N(0, 1)
    assert torch.all(parent.tcs.gates["det"].fc1.bias == 3.0)  # the parent's init reached the rest
    # The parent's wide first layer makes the hidden units large, yet the gate stays near 1 (2 * sigmoid(3) = 1.9).
    assert (parent.tcs.gate(feat, "det") - 1).abs().max() < 0.15
    own = Parent(dict(init_cfg=dict(type="Constant", layer="Linear", val=0.0, bias=3.0)))
    own.init_weights()
    assert torch.allclose(own.tcs.gate(feat, "det"), torch.full((2, C), 2 * torch.sigmoid(torch.tensor(3.0)).item()))


def test_one_tasks_loss_trains_only_that_tasks_gate():
    tcs, feat = TaskChannelScaling(C, H), _feat()
    with torch.no_grad():
        before = {t: tcs.gate(feat, t) for t in tcs.tasks}
    optimizer = torch.optim.SGD(tcs.parameters(), lr=1.0)
    for _ in range(20):
        optimizer.zero_grad()
        tcs(feat, "det")[:, 0].square().mean().backward()  # det wants channel 0 off
        for task in ("map", "occ"):
            assert all(p.grad is None for p in tcs.gates[task].parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tcs.gates["det"].parameters())
        optimizer.step()
    with torch.no_grad():
        after = {t: tcs.gate(feat, t) for t in tcs.tasks}
    assert torch.equal(after["map"], before["map"]) and torch.equal(after["occ"], before["occ"])
    assert torch.all(after["det"][:, 0] < before["det"][:, 0] - 0.1)
    assert torch.all(after["det"][:, 0] < after["map"][:, 0] - 0.1)  # the tasks' gates now differ


def test_errors_name_the_problem():
    tcs = TaskChannelScaling(C, H, tasks=("det", "map"))
    with pytest.raises(KeyError, match="no gate for task 'occ'"):
        tcs(_feat(), "occ")
    with pytest.raises(ValueError, match="task_scaling.channels=8 but the feature has 4"):
        tcs(torch.randn(1, 4, 3, 3), "det")
    with pytest.raises(ValueError, match="name each task once"):
        TaskChannelScaling(C, H, tasks=("det", "det"))
    with pytest.raises(ValueError, match="max_scale must be positive"):
        TaskChannelScaling(C, H, max_scale=0.0)


def test_exports_to_onnx_for_a_fixed_task():
    class MapGate(torch.nn.Module):
        def __init__(self, tcs):
            super().__init__()
            self.tcs = tcs

        def forward(self, feat):
            return self.tcs(feat, "map")

    module, feat = MapGate(_randomise(TaskChannelScaling(C, H))).eval(), _feat(batch=1, size=16)
    session, ops = export_onnx(module, (feat,), input_names=["feat"])
    out = session.run(None, {"feat": feat.numpy()})[0]
    assert np.allclose(out, module(feat).detach().numpy(), atol=1e-5)
    assert "NonZero" not in ops and "Sigmoid" in ops


def test_gates_the_shared_feature_in_the_bev_model():
    cfg = model_cfg(("camera", "lidar"), "ConvFuser")
    cfg["task_scaling"] = dict(type="TaskChannelScaling", channels=32, hidden_channels=8)  # SECONDFPN: 16 + 16
    model = MODELS.build(cfg)
    model.init_weights()
    assert isinstance(model.task_scaling, TaskChannelScaling) and model.task_scaling.tasks == model.tasks == ("det",)
    feat = torch.rand(1, 32, 4, 4)
    assert torch.equal(model.task_feat("det", feat), model.task_scaling(feat, "det"))
    check_model_trains(model, random_batch())  # every gate parameter learns through the detection loss
