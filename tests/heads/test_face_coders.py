import torch

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
    priors = coder.priors([(8, 8), (4, 4), (2, 2)], (64, 64))
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
    same = torch.cat([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], 1)
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
