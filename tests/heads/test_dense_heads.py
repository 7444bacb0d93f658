"""Dense task heads: multi-scale fusion and losses against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

from perception_mtl.heads import DenseDepthHead, DenseEdgeHead, DenseSemSegHead


def _sample(**fields):
    s = BaseDataElement()
    for k, v in fields.items():
        setattr(s, k, v)
    return s


def test_fusion_upsamples_every_level_to_the_output_size():
    torch.manual_seed(0)
    head = DenseSemSegHead([4, 6, 8], num_classes=3, channels=5, num_convs=0).eval()
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 8, 2, 2)]
    out = head(feats, (16, 12))
    assert out.shape == (2, 3, 16, 12)
    # Reference: lateral 1x1 per level, bilinear to the finest (8x8), sum, predictor, bilinear to the output.
    fused = sum(
        F.interpolate(conv(f), size=(8, 8), mode="bilinear", align_corners=False)
        for conv, f in zip(head.lateral, feats)
    )
    ref = F.interpolate(head.predictor(fused), size=(16, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="feature levels"):
        head(feats[:2], (16, 12))


def test_depth_loss_is_l1_in_log_space_over_valid_pixels():
    head = DenseDepthHead([4], min_depth=0.1, channels=4)
    pred = torch.log(torch.tensor([[[[2.0, 4.0], [1.0, 9.0]]]]))  # (1, 1, 2, 2) log depth
    gt = torch.tensor([[2.0, 2.0], [0.0, 3.0]])  # 0 = sky, no loss
    loss = head.loss_by_feat(pred, [_sample(gt_depth=gt)])["loss_log_l1"]
    assert loss.item() == pytest.approx((0 + math.log(2) + math.log(3)) / 3, rel=1e-6)
    (pred_sample,) = head.predict_by_feat(torch.full((1, 1, 2, 2), 10.0), [_sample()])
    assert torch.allclose(pred_sample.pred_depth, torch.full((2, 2), 80.0))  # clamped to max_depth


def test_edge_loss_balances_rare_positives():
    head = DenseEdgeHead([4], channels=4)
    gt = torch.zeros(4, 4)
    gt[0, 0] = 1.0  # 1 positive, 15 negatives: weights 15/16 and 1/16
    pred = torch.zeros(1, 1, 4, 4)
    loss = head.loss_by_feat(pred, [_sample(gt_edge=gt)])["loss_bce"]
    expected = 2 * (15 / 16 * math.log(2) + 15 * (1 / 16) * math.log(2)) / 16
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_seg_loss_ignores_the_ignore_index_and_loss_weight_scales():
    head = DenseSemSegHead([4], num_classes=2, ignore_index=255, channels=4, loss_weight=3.0)
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    gt = torch.tensor([[0, 255]])
    loss = head.loss_by_feat(logits, [_sample(gt_sem_seg=gt)])["loss_ce"]
    assert loss.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)), rel=1e-6)
    head.forward = lambda feats, size: logits
    assert head.loss([None], [_sample(gt_sem_seg=gt)], (1, 2))["loss_ce"].item() == pytest.approx(3 * loss.item())
    with pytest.raises(KeyError, match="gt_sem_seg"):
        head.loss_by_feat(logits, [_sample()])
    with pytest.raises(ValueError, match="num_classes"):
        DenseSemSegHead([4], num_classes=1)
    with pytest.raises(ValueError, match="min_depth"):
        DenseDepthHead([4], min_depth=5.0, max_depth=1.0)
