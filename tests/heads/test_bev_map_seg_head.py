"""BEVMapSegHead: resampling onto the map grid (frames), losses, gradients, prediction and export."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from perception_mtl.deploy import export_onnx
from perception_mtl.heads.bev_map_seg_head import map_grid
from perception_mtl.registry import MODELS

BEV_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def _head(**kwargs):
    cfg = dict(type="BEVMapSegHead", in_channels=8, bev_range=BEV_RANGE, feat_channels=8)
    cfg.update(xbound=(-50.0, 50.0, 2.0), ybound=(-50.0, 50.0, 2.0), **kwargs)  # 50 x 50 map cells
    return MODELS.build(cfg)


def test_grid_puts_each_map_cell_on_its_bev_position():
    # A feature that is x along columns and y along rows, on a 128 x 128 grid of 0.8 m.
    cols = torch.arange(128, dtype=torch.float32)
    x_feat = (-51.2 + (cols + 0.5) * 0.8).expand(128, 128)  # value = x of the column centre
    y_feat = x_feat.t()  # value = y of the row centre
    feat = torch.stack([x_feat, y_feat])[None]
    out = torch.nn.functional.grid_sample(
        feat, map_grid(BEV_RANGE, (-50, 50, 0.5), (-50, 50, 0.5)), align_corners=False
    )
    centres = -50 + (np.arange(200) + 0.5) * 0.5
    # Row i of the map is x (LoadBEVMapSegmentation's convention), column j is y.
    assert np.allclose(out[0, 0].numpy(), centres[:, None].repeat(200, 1), atol=1e-4)
    assert np.allclose(out[0, 1].numpy(), centres[None, :].repeat(200, 0), atol=1e-4)


def _samples(target):
    return [BaseDataElement(gt_bev_seg=t) for t in target]


@pytest.mark.parametrize("loss", ["focal", "bce"])
def test_loss_is_finite_reaches_every_parameter_and_falls_on_the_target(loss):
    head = _head(loss=loss).train()
    feat = torch.randn(2, 8, 128, 128)
    target = (torch.rand(2, 6, 50, 50) > 0.7).to(torch.uint8)
    losses = head.loss(feat, _samples(target))
    (key,) = losses
    assert key == f"loss_{loss}" and torch.isfinite(losses[key])
    losses[key].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    # Logits that agree with the target score a lower loss than logits that contradict it.
    good = head.loss_by_feat((target.float() * 2 - 1) * 6, _samples(target))[key]
    bad = head.loss_by_feat((1 - target.float() * 2) * 6, _samples(target))[key]
    assert good < 0.01 * bad


def test_focal_loss_equals_the_formula():
    head = _head(loss="focal", focal_gamma=2.0, focal_alpha=0.25)
    logits = torch.randn(1, 6, 50, 50)
    target = (torch.rand(1, 6, 50, 50) > 0.5).float()
    p = logits.sigmoid()
    pt = torch.where(target > 0, p, 1 - p)
    alpha = torch.where(target > 0, 0.25, 0.75)
    expected = (-alpha * (1 - pt) ** 2 * pt.log()).mean()
    got = head.loss_by_feat(logits, _samples(target.to(torch.uint8)))["loss_focal"]
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)


def test_predict_writes_probabilities_on_the_map_grid_and_wrong_grid_is_named():
    head = _head().eval()
    samples = head.predict(torch.randn(2, 8, 128, 128), [BaseDataElement(), BaseDataElement()])
    prob = samples[0].pred_bev_seg
    assert prob.shape == (6, 50, 50) and 0 <= prob.min() and prob.max() <= 1
    with pytest.raises(ValueError, match="xbound / ybound"):
        head.loss(torch.randn(1, 8, 128, 128), _samples(torch.zeros(1, 6, 200, 200, dtype=torch.uint8)))


def test_exports_to_onnx():
    head = _head().eval()
    feat = torch.randn(1, 8, 128, 128)
    session, ops = export_onnx(head, (feat,), input_names=["feat"])
    out = session.run(None, {"feat": feat.numpy()})[0]
    assert np.allclose(out, head(feat).detach().numpy(), atol=1e-4)
    assert "GridSample" in ops and "NonZero" not in ops
