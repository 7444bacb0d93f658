import torch
from mmengine.structures import BaseDataElement

from perception_mtl.registry import MODELS
from perception_mtl.testing import RegistryCase


def _samples():
    torch.manual_seed(0)
    samples = []
    for _ in range(2):
        s = BaseDataElement()
        s.gt_sem_seg = torch.randint(0, 3, (16, 16))
        s.gt_depth = torch.rand(16, 16) * 10
        s.gt_edge = (torch.rand(16, 16) > 0.8).float()
        samples.append(s)
    return samples


def _check_dense_head(field: str, loss_key: str):
    def check(head):
        feats = [torch.randn(2, 8, 8, 8, requires_grad=True), torch.randn(2, 8, 4, 4, requires_grad=True)]
        losses = head.loss(feats, _samples(), (16, 16))
        assert set(losses) == {loss_key} and torch.isfinite(losses[loss_key])
        losses[loss_key].backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
        head.eval()
        preds = head.predict([f.detach() for f in feats], _samples(), (16, 16))
        assert getattr(preds[0], field).shape == (16, 16)

    return check


CASES = {
    "DenseSemSegHead": RegistryCase(
        MODELS,
        dict(type="DenseSemSegHead", in_channels=[8, 8], num_classes=3, channels=8),
        _check_dense_head("pred_sem_seg", "loss_ce"),
    ),
    "DenseDepthHead": RegistryCase(
        MODELS,
        dict(type="DenseDepthHead", in_channels=[8, 8], channels=8),
        _check_dense_head("pred_depth", "loss_log_l1"),
    ),
    "DenseEdgeHead": RegistryCase(
        MODELS,
        dict(type="DenseEdgeHead", in_channels=[8, 8], channels=8),
        _check_dense_head("pred_edge", "loss_bce"),
    ),
}
