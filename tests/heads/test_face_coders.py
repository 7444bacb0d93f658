import pytest
import torch
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
from torchvision.ops import box_iou

from perception_mtl.heads.pose_bin_coder import PoseBinCoder
from perception_mtl.heads.retinaface_prior_coder import RetinaFacePriorCoder


def test_pose_bins_round_trip_within_half_a_bin():
    coder = PoseBinCoder()
    assert coder.num_bins == 66 and coder.high == 99.0
    angles = torch.linspace(-99.0, 98.99, 2001)
    bins = coder.encode(angles)
    assert bins.min() == 0 and bins.max() == 65
    logits = torch.nn.functional.one_hot(bins, 66).float() * 50.0  # a confident one-hot prediction
    assert (coder.decode(logits) - angles).abs().max() <= 1.5 + 1e-4
    assert torch.isclose(coder.decode(torch.zeros(66)), torch.tensor(0.0), atol=1e-5)  # uniform -> middle
    assert coder.valid(torch.tensor([-99.0, 98.9, 99.0, -100.0, float("nan")])).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_priors_layout():
    coder = RetinaFacePriorCoder()
    priors = bbox_xyxy_to_cxcywh(coder.priors([(8, 8), (4, 4), (2, 2)], (64, 64)))
    assert priors.shape == ((64 + 16 + 4) * 2, 4)
    torch.testing.assert_close(priors[0], torch.tensor([4.0, 4.0, 16.0, 16.0]))
    torch.testing.assert_close(priors[1], torch.tensor([4.0, 4.0, 32.0, 32.0]))
    torch.testing.assert_close(priors[2], torch.tensor([12.0, 4.0, 16.0, 16.0]))  # next cell along x
    torch.testing.assert_close(priors[128], torch.tensor([8.0, 8.0, 64.0, 64.0]))  # level 2 starts
    torch.testing.assert_close(priors[-1], torch.tensor([48.0, 48.0, 512.0, 512.0]))


def test_box_and_landmark_encoding_round_trip():
    coder = RetinaFacePriorCoder()
    priors = coder.priors([(8, 8), (4, 4), (2, 2)], (64, 64))[:10]
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(10, 2, generator=gen) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(10, 2, generator=gen) * 30], 1)
    deltas = coder.encode_boxes(boxes, priors)
    torch.testing.assert_close(coder.decode_boxes(deltas, priors), boxes, atol=1e-4, rtol=1e-5)
    # a box equal to its prior encodes to zeros; variances 0.1 / 0.2 scale the offsets
    p = priors[:1]
    same = p.clone()
    torch.testing.assert_close(coder.encode_boxes(same, p), torch.zeros(1, 4))
    shifted = same + torch.tensor([1.6, 0.0, 1.6, 0.0])  # 1.6 px = 0.1 * 16 px
    torch.testing.assert_close(coder.encode_boxes(shifted, p), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    landmarks = torch.rand(10, 5, 2, generator=gen) * 60
    enc = coder.encode_landmarks(landmarks, priors)
    assert enc.shape == (10, 10)
    torch.testing.assert_close(coder.decode_landmarks(enc, priors), landmarks, atol=1e-4, rtol=1e-5)


def test_soft_bin_targets_reduce_to_one_hot_for_small_sigma():
    from perception_mtl.heads.face_pose_head import FacePoseHead

    torch.manual_seed(0)
    logits, target = torch.randn(5, 66), torch.tensor([-98.0, -30.2, 0.4, 45.5, 98.0])
    hard = FacePoseHead(in_channels=8, stitch_channels=8, pose_channels=8)._bin_cross_entropy(logits, target)
    soft = FacePoseHead(in_channels=8, stitch_channels=8, pose_channels=8, pose_label_sigma=0.3)
    torch.testing.assert_close(soft._bin_cross_entropy(logits, target), hard, atol=1e-3, rtol=1e-3)
    wide = FacePoseHead(in_channels=8, stitch_channels=8, pose_channels=8, pose_label_sigma=6.0)
    assert wide._bin_cross_entropy(logits, target) != hard


# The hand-written RetinaFace code the mmdet pieces replaced, kept as the reference they must reproduce.
def _reference_priors(feat_sizes, min_sizes=((16, 32), (64, 128), (256, 512)), strides=(8, 16, 32)):
    """(P, 4) (cx, cy, w, h): level, then row-major cell, then size."""
    levels = []
    for (h, w), stride, sizes in zip(feat_sizes, strides, min_sizes):
        ys, xs = torch.meshgrid((torch.arange(h) + 0.5) * stride, (torch.arange(w) + 0.5) * stride, indexing="ij")
        a = len(sizes)
        centres = torch.stack([xs, ys], -1).reshape(h * w, 1, 2).expand(h * w, a, 2)
        side = torch.tensor(sizes, dtype=torch.float32).reshape(1, a, 1).expand(h * w, a, 2)
        levels.append(torch.cat([centres, side], -1).reshape(-1, 4))
    return torch.cat(levels)


def _reference_encode(boxes, priors, v0=0.1, v1=0.2):
    centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6)
    return torch.cat([(centre - priors[:, :2]) / (v0 * priors[:, 2:]), torch.log(size / priors[:, 2:]) / v1], 1)


def _reference_decode(deltas, priors, v0=0.1, v1=0.2):
    centre = priors[:, :2] + deltas[..., :2] * v0 * priors[:, 2:]
    size = priors[:, 2:] * torch.exp((deltas[..., 2:] * v1).clamp(max=10.0))
    return torch.cat([centre - size / 2, centre + size / 2], -1)


def _reference_match(gt_boxes, priors_xyxy, pos_iou=0.35, min_force_iou=0.2):
    iou = box_iou(gt_boxes, priors_xyxy)
    best_iou, best_gt = iou.max(0)
    prior_iou, best_prior = iou.max(1)
    for g in torch.nonzero(prior_iou >= min_force_iou).flatten().tolist():
        best_gt[best_prior[g]] = g
        best_iou[best_prior[g]] = 2.0
    return best_gt, best_iou >= pos_iou


def _random_boxes(gen, n, img=160.0, min_side=4.0, max_side=120.0):
    xy = torch.rand(n, 2, generator=gen) * img * 0.8
    return torch.cat([xy, xy + min_side + torch.rand(n, 2, generator=gen) * (max_side - min_side)], 1)


def test_mmdet_priors_and_box_coder_equal_the_retinaface_code():
    coder = RetinaFacePriorCoder()
    feat_sizes = [(20, 24), (10, 12), (5, 6)]  # a non-square 160 x 192 input
    priors = coder.priors(feat_sizes, (160, 192))
    ref = _reference_priors(feat_sizes)
    assert torch.equal(bbox_xyxy_to_cxcywh(priors), ref)  # same priors, same order, bit for bit
    gen = torch.Generator().manual_seed(1)
    boxes = _random_boxes(gen, len(priors))
    torch.testing.assert_close(coder.encode_boxes(boxes, priors), _reference_encode(boxes, ref))
    deltas = torch.randn(2, len(priors), 4, generator=gen) * 3.0  # batched (B, P, 4) decode
    torch.testing.assert_close(coder.decode_boxes(deltas, priors), _reference_decode(deltas, ref))
    huge = torch.tensor([[0.0, 0.0, 60.0, 60.0]])  # the size cap stays RetinaFace's exp(10), not mmdet's 62.5
    torch.testing.assert_close(coder.decode_boxes(huge, priors[:1]), _reference_decode(huge, ref[:1]))
    # a fixed case by hand: prior 16 px at (4, 4); box centre (5.6, 2.4), size 32 x 8
    box = torch.tensor([[5.6 - 16, 2.4 - 4, 5.6 + 16, 2.4 + 4]])
    expected = torch.tensor([[1.0, -1.0, torch.log(torch.tensor(2.0)) / 0.2, torch.log(torch.tensor(0.5)) / 0.2]])
    torch.testing.assert_close(coder.encode_boxes(box, priors[:1]), expected)


def test_prior_clip_keeps_retinaface_clamping():
    coder = RetinaFacePriorCoder(clip=True)
    priors = bbox_xyxy_to_cxcywh(coder.priors([(8, 8), (4, 4), (2, 2)], (64, 64)))
    ref = _reference_priors([(8, 8), (4, 4), (2, 2)]).clamp(min=0, max=64)
    torch.testing.assert_close(priors, ref)
    assert priors[-1].tolist() == [48.0, 48.0, 64.0, 64.0]


def test_max_iou_assigner_reproduces_retinaface_matching():
    from perception_mtl.heads.face_pose_head import FacePoseHead

    head = FacePoseHead(in_channels=8, stitch_channels=8, pose_channels=8)
    priors = head.coder.priors([(20, 20), (10, 10), (5, 5)], (160, 160))
    gen = torch.Generator().manual_seed(2)
    for trial in range(20):
        gts = _random_boxes(gen, 1 + trial % 6, max_side=[12.0, 40.0, 150.0][trial % 3])
        if trial == 0:  # two faces whose best prior is the same
            gts = torch.tensor([[0.0, 0.0, 14.0, 14.0], [1.0, 1.0, 15.0, 15.0]])
        gt_index, pos = head._match(gts, priors)
        ref_index, ref_pos = _reference_match(gts, priors)
        assert torch.equal(pos, ref_pos)
        assert torch.equal(gt_index[pos], ref_index[ref_pos])
    # prior 0 is both faces' best (IoU 0.47 and 0.37): face 0 has the higher IoU, but forcing gives it to face 1
    gt_index, pos = head._match(torch.tensor([[0.0, 0.0, 14.0, 14.0], [1.0, 1.0, 15.0, 15.0]]), priors)
    assert pos[0] and gt_index[0] == 1
    # a tiny face whose best IoU is under min_force_iou gets no prior; no faces -> no positives
    assert not head._match(torch.tensor([[70.0, 70.0, 73.0, 73.0]]), priors)[1].any()
    assert not head._match(torch.zeros(0, 4), priors)[1].any()


def test_coder_rejects_per_level_sizes_mmdet_cannot_share():
    with pytest.raises(ValueError, match="same multiples"):
        RetinaFacePriorCoder(min_sizes=((16, 32), (64, 96), (256, 512)))
