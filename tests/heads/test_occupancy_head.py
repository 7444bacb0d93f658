"""OccupancyHead: frames (ego voxel columns read from the LiDAR-frame BEV feature), shapes, the masked
class-weighted cross-entropy, Lovasz-softmax, prediction and ONNX export."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from perception_mtl.datasets.transforms.load_occupancy import LoadOccupancy
from perception_mtl.deploy import export_onnx
from perception_mtl.heads.occupancy_head import lovasz_softmax
from perception_mtl.registry import MODELS

BEV_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
SMALL_GRID = (20, 20, 4)  # 4 m x 4 m x 1.6 m voxels over Occ3D's range: fast loss tests


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def _head(**kwargs):
    cfg = dict(type="OccupancyHead", in_channels=8, bev_range=BEV_RANGE, feat_channels=8, grid_size=SMALL_GRID)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _yaw_mount(yaw_deg: float, translation) -> torch.Tensor:
    c, s = np.cos(np.deg2rad(yaw_deg)), np.sin(np.deg2rad(yaw_deg))
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = translation
    return torch.as_tensor(m, dtype=torch.float32)


def _samples(semantics, mask_camera=None, mask_lidar=None, lidar2ego=None):
    out = []
    for b in range(semantics.shape[0]):
        gt = dict(
            semantics=semantics[b].to(torch.uint8),
            mask_camera=torch.ones_like(semantics[b], dtype=torch.bool) if mask_camera is None else mask_camera[b],
            mask_lidar=torch.ones_like(semantics[b], dtype=torch.bool) if mask_lidar is None else mask_lidar[b],
        )
        meta = {} if lidar2ego is None else dict(lidar2ego=lidar2ego[b].numpy())
        out.append(BaseDataElement(gt_occ=gt, metainfo=meta))
    return out


def test_marked_lidar_cell_lands_on_the_right_ego_voxel_for_a_yawed_offset_lidar():
    # 240 x 240 feature cells of 0.4 m over [-48, 48]: cell (row r, col c) is centred at
    # x = -47.8 + 0.4 c, y = -47.8 + 0.4 r in the LiDAR frame.
    head = _head(bev_range=[-48.0, -48.0, -5.0, 48.0, 48.0, 3.0], grid_size=(200, 200, 16))
    feat = torch.zeros(1, 1, 240, 240)
    feat[0, 0, 107, 145] = 1.0  # LiDAR (x, y) = (10.2, -5.0)
    # nuScenes-like mount: LiDAR x axis = ego right (yaw -90 deg), mounted at (0.8, 0.4, 1.84) in the ego frame.
    # By hand: ego x = lidar y + 0.8 = -4.2, ego y = -lidar x + 0.4 = -9.8, i.e. voxel
    # i = (-4.2 + 39.8) / 0.4 = 89, j = (-9.8 + 39.8) / 0.4 = 75 (Occ3D: centre -39.8 + 0.4 i).
    out = head.resample(feat, _yaw_mount(-90.0, (0.8, 0.4, 1.84))[None])
    assert out.shape == (1, 1, 200, 200)
    hits = torch.nonzero(out[0, 0] > 1e-6).tolist()
    assert hits == [[89, 75]] and out[0, 0, 89, 75].item() == pytest.approx(1.0, abs=1e-5)
    # With the identity mount the same cell is elsewhere (the head really uses the mount).
    assert out[0, 0, 89, 75] > head.resample(feat, torch.eye(4)[None])[0, 0, 89, 75] + 0.5


def test_bev_augmentation_cancels_between_the_augmented_labels_and_the_augmented_feature():
    """LoadOccupancy resamples the labels with lidar2ego @ A @ inv(lidar2ego); the head maps ego columns with
    lidar2ego only. An object at LiDAR point p must then be read from the augmented feature at A p."""
    lidar2ego = _yaw_mount(-90.0, (0.943, 0.0, 1.84)).double().numpy()
    angle = 0.3
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    trans = np.eye(4)
    trans[:3, 3] = (1.5, -0.7, 0.2)
    aug = np.diag([1.0, -1.0, 1.0, 1.0]) @ trans @ np.diag([1.05, 1.05, 1.05, 1.0]) @ rot  # as BEVAug composes it
    # A 3x3x3 car block centred on ego voxel (125, 87, 5), i.e. ego (10.2, -5.0, 1.2).
    labels = {k: np.zeros((200, 200, 16), bool) for k in ("mask_lidar", "mask_camera")}
    labels["semantics"] = np.full((200, 200, 16), 17, np.uint8)
    labels["semantics"][124:127, 86:89, 4:7] = 4
    moved = LoadOccupancy().resample(labels, lidar2ego @ aug @ np.linalg.inv(lidar2ego))["semantics"]
    ii, jj, _ = np.nonzero(moved == 4)
    assert len(ii) > 0
    p_lidar = np.linalg.inv(lidar2ego) @ np.array([10.2, -5.0, 1.2, 1.0])
    p_aug = (aug @ p_lidar)[:2]
    assert np.linalg.norm(p_aug - p_lidar[:2]) > 3.0  # the augmentation moves the object by metres
    head = _head(grid_size=(200, 200, 16))
    pos = head.lidar_positions(torch.as_tensor(lidar2ego, dtype=torch.float32)[None])[0].numpy()
    read_at = pos[ii, jj].mean(0)
    assert np.linalg.norm(read_at - p_aug) < 0.2, (read_at, p_aug)


def test_shapes_and_predict_writes_the_argmax_label_volume():
    head = _head().eval()
    feat = torch.randn(2, 8, 128, 128)
    logits = head(feat)
    assert logits.shape == (2, 18, 20, 20, 4)
    samples = head.predict(feat, [BaseDataElement(), BaseDataElement()])
    assert samples[0].pred_occ.shape == SMALL_GRID and samples[0].pred_occ.dtype == torch.uint8
    assert torch.equal(samples[1].pred_occ, logits[1].argmax(0).to(torch.uint8))


def test_per_sample_lidar2ego_is_read_from_the_data_samples():
    head = _head(grid_size=(40, 40, 4)).eval()
    feat = torch.randn(2, 8, 128, 128)
    mounts = torch.stack([_yaw_mount(-90.0, (0.943, 0.0, 1.84)), _yaw_mount(30.0, (3.0, -2.0, 1.8))])
    semantics = torch.full((2, 40, 40, 4), 17)
    samples = head.predict(feat, _samples(semantics, lidar2ego=mounts))
    expected = head(feat, mounts).argmax(1).to(torch.uint8)
    assert torch.equal(samples[0].pred_occ, expected[0]) and torch.equal(samples[1].pred_occ, expected[1])
    assert not torch.equal(samples[1].pred_occ, head(feat).argmax(1)[1].to(torch.uint8))
    assert torch.allclose(head.batch_lidar2ego(_samples(semantics[:1]), feat), head.default_lidar2ego[None])


@pytest.mark.parametrize("mask", ["camera", "lidar", None])
def test_loss_ignores_voxels_outside_the_chosen_mask(mask):
    head = _head(mask=mask)
    semantics = torch.randint(0, 18, (2, *SMALL_GRID))
    cam = torch.rand(2, *SMALL_GRID) > 0.5
    lidar = torch.rand(2, *SMALL_GRID) > 0.5
    samples = _samples(semantics, cam, lidar)
    logits = torch.randn(2, 18, *SMALL_GRID)
    base = head.loss_by_feat(logits, samples)["loss_occ"]
    chosen = {"camera": cam, "lidar": lidar, None: torch.ones_like(cam)}[mask]
    noise = torch.randn_like(logits) * 5
    outside = head.loss_by_feat(logits + noise * (~chosen)[:, None], samples)["loss_occ"]
    inside = head.loss_by_feat(logits + noise * chosen[:, None], samples)["loss_occ"]
    if mask is not None:
        assert outside.item() == pytest.approx(base.item(), abs=1e-6)
    assert abs(inside.item() - base.item()) > 1e-3
    if mask is not None:  # nothing observed: a zero loss, not a division by zero
        nothing = torch.zeros_like(cam)
        empty = head.loss_by_feat(logits, _samples(semantics, nothing, nothing))["loss_occ"]
        assert empty.item() == 0.0


def test_loss_is_the_class_weighted_mean_over_masked_voxels():
    weights = torch.rand(18) + 0.1
    head = _head(class_weight=weights.tolist(), loss_weight=2.0)
    semantics = torch.randint(0, 18, (1, *SMALL_GRID))
    cam = torch.rand(1, *SMALL_GRID) > 0.3
    logits = torch.randn(1, 18, *SMALL_GRID)
    ce = -F.log_softmax(logits, 1).gather(1, semantics[:, None])[:, 0]
    w = weights[semantics] * cam
    expected = 2.0 * (w * ce).sum() / w.sum()
    got = head.loss_by_feat(logits, _samples(semantics, cam))["loss_occ"]
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_class_frequencies_give_inverse_log_weights():
    counts = [0.0] + [10.0**k for k in range(1, 18)]
    head = _head(class_frequencies=counts)
    assert head.class_weight[0].item() == pytest.approx(1.0)
    assert head.class_weight[5].item() == pytest.approx(1 / np.log(np.e + 1e5), rel=1e-6)
    with pytest.raises(ValueError, match="not both"):
        _head(class_frequencies=counts, class_weight=[1.0] * 18)
    with pytest.raises(ValueError, match="18"):
        _head(class_weight=[1.0] * 17)


def test_loss_is_finite_and_reaches_every_parameter_and_prefers_the_target():
    head = _head(lovasz_weight=0.5).train()
    feat = torch.randn(2, 8, 128, 128, requires_grad=True)
    semantics = torch.randint(0, 18, (2, *SMALL_GRID))
    samples = _samples(semantics, torch.rand(2, *SMALL_GRID) > 0.5)
    losses = head.loss(feat, samples)
    assert set(losses) == {"loss_occ", "loss_lovasz"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing and feat.grad.abs().sum() > 0
    good = head.loss_by_feat(F.one_hot(semantics, 18).permute(0, 4, 1, 2, 3).float() * 10, samples)
    bad = head.loss_by_feat(F.one_hot((semantics + 1) % 18, 18).permute(0, 4, 1, 2, 3).float() * 10, samples)
    assert good["loss_occ"] < 0.01 * bad["loss_occ"] and good["loss_lovasz"] < 0.01 * bad["loss_lovasz"]


def test_lovasz_softmax_on_hard_predictions_is_one_minus_iou():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    # Present classes 0, 1, 2: IoU 2/3, 1/3, 1/2.
    expected = np.mean([1 - 2 / 3, 1 - 1 / 3, 1 - 1 / 2])
    assert lovasz_softmax(F.one_hot(pred, 4).float(), labels).item() == pytest.approx(expected, rel=1e-6)
    assert lovasz_softmax(F.one_hot(labels, 4).float(), labels).item() == 0.0


def test_wrong_grid_and_missing_targets_are_named():
    head = _head()
    with pytest.raises(ValueError, match="occ_range / grid_size"):
        head.loss(torch.randn(1, 8, 128, 128), _samples(torch.full((1, 200, 200, 16), 17)))
    with pytest.raises(KeyError, match="gt_occ"):
        head.loss(torch.randn(1, 8, 128, 128), [BaseDataElement()])
    with pytest.raises(ValueError, match="mask"):
        _head(mask="radar")


def test_exports_to_onnx_with_the_mount_as_input():
    head = _head(grid_size=(50, 50, 8)).eval()
    feat = torch.randn(2, 8, 128, 128)
    mounts = torch.stack([_yaw_mount(-90.0, (0.943, 0.0, 1.84)), _yaw_mount(-89.0, (0.95, 0.01, 1.83))])
    session, ops = export_onnx(head, (feat, mounts), input_names=["feat", "lidar2ego"])
    out = session.run(None, {"feat": feat.numpy(), "lidar2ego": mounts.numpy()})[0]
    expected = head(feat, mounts).detach().numpy()
    assert out.shape == (2, 18, 50, 50, 8)
    assert np.abs(out - expected).max() < 1e-4
    assert "GridSample" in ops and "NonZero" not in ops
