"""The generated datasets' shared skeleton: sample i of a split is a function of seed + split offset + i only."""

import numpy as np
import pytest
import torch

from perception_mtl.synthetic import SyntheticDenseScenes, TwoModalityBEVDataset
from perception_mtl.synthetic.dense_scenes import render_scene
from perception_mtl.synthetic.seeded_dataset import SeededGeneratedDataset

# The seed streams as the datasets have always drawn them (written out, not read from the code).
OFFSETS = {"train": 0, "val": 1_000_003, "test": 2_000_003}


class _Draws(SeededGeneratedDataset):
    METAINFO = {"classes": ("x",)}

    def generate(self, index, rng):
        return dict(inputs=rng.random(3), index=index)


def test_items_come_from_the_split_seed_stream():
    for split, offset in OFFSETS.items():
        dataset = _Draws(split, num_samples=4, seed=11)
        assert len(dataset) == 4 and dataset.seed == 11 + offset
        for i in (3, 0, 2):  # any order
            assert np.array_equal(dataset[i]["inputs"], np.random.default_rng(11 + offset + i).random(3))
    assert dataset.metainfo == {"classes": ("x",)} and dataset.metainfo is not _Draws.METAINFO


def test_bad_split_size_and_index_are_named():
    with pytest.raises(ValueError, match="_Draws: split"):
        _Draws("dev", 1, 0)
    for n in (0, OFFSETS["val"] + 1):  # more samples would run into the next split's stream
        with pytest.raises(ValueError, match="num_samples"):
            _Draws("train", n, 0)
    with pytest.raises(IndexError, match=r"_Draws\(val\): index 2"):
        _Draws("val", 2, 0)[2]
    with pytest.raises(NotImplementedError):
        SeededGeneratedDataset("train", 1, 0)[0]


def test_two_modality_bev_items_are_those_of_their_seeds():
    dataset = TwoModalityBEVDataset("val", num_samples=3, grid_size=16, seed=5)
    for i in range(3):
        camera, lidar, centers, masks = dataset._generate(np.random.default_rng(5 + OFFSETS["val"] + i))
        item = dataset[i]
        assert torch.equal(item["inputs"]["camera"], torch.from_numpy(camera))
        assert torch.equal(item["inputs"]["lidar"], torch.from_numpy(lidar))
        assert torch.equal(item["data_samples"].gt_centers, torch.from_numpy(centers))
        assert torch.equal(item["data_samples"].gt_bev_seg, torch.from_numpy(masks))
        assert item["data_samples"].metainfo["sample_idx"] == i


def test_dense_scene_items_are_those_of_their_seeds():
    dataset = SyntheticDenseScenes("test", num_samples=2, img_size=24, max_objects=4, seed=9)
    for i in range(2):
        scene = render_scene(np.random.default_rng(9 + OFFSETS["test"] + i), 24, 24, 4)
        item = dataset[i]
        assert torch.equal(item["inputs"], torch.from_numpy(scene["img"]).permute(2, 0, 1))
        assert torch.equal(item["data_samples"].gt_depth, torch.from_numpy(scene["depth"]))
        assert item["data_samples"].metainfo["split"] == "test"
