"""ToyBEVDataset: deterministic, disjoint splits, inputs consistent with the masks."""

import pytest
import torch

from perception_mtl.datasets import ToyBEVDataset


def test_samples_are_deterministic_and_splits_disjoint():
    train = ToyBEVDataset("train", num_samples=8)
    again = ToyBEVDataset("train", num_samples=8)
    val = ToyBEVDataset("val", num_samples=8)
    for i in range(8):
        assert torch.equal(train[i]["inputs"]["bev"], again[i]["inputs"]["bev"])
    train_masks = {train[i]["data_samples"].gt_bev_seg.numpy().tobytes() for i in range(8)}
    val_masks = {val[i]["data_samples"].gt_bev_seg.numpy().tobytes() for i in range(8)}
    assert not train_masks & val_masks


def test_points_fall_on_or_near_objects():
    ds = ToyBEVDataset("train", num_samples=32, grid_size=32)
    tall_on_object = tall = 0
    for i in range(len(ds)):
        item = ds[i]
        bev, masks = item["inputs"]["bev"], item["data_samples"].gt_bev_seg
        assert bev.shape == (2, 32, 32) and masks.shape == (2, 32, 32)
        assert set(masks.unique().tolist()) <= {0.0, 1.0}
        near = torch.nn.functional.max_pool2d(masks.amax(0)[None, None], 3, 1, 1)[0, 0] > 0
        high = bev[1] > 0.2  # points above 0.4 m: object surfaces, not ground clutter
        tall += int(high.sum())
        tall_on_object += int((high & near).sum())
    assert tall > 0 and tall_on_object / tall > 0.95


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        ToyBEVDataset("trainval")
    with pytest.raises(IndexError, match="out of range"):
        ToyBEVDataset("val", num_samples=2)[2]
