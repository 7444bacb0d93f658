"""Rendered dense scenes: determinism, disjoint splits, and labels consistent with the geometry."""

import numpy as np
import pytest
import torch

from perception_mtl.synthetic import SyntheticDenseScenes
from perception_mtl.synthetic.dense_scenes import CLASSES, render_scene


def test_items_are_deterministic_and_splits_disjoint():
    train = SyntheticDenseScenes("train", num_samples=4, img_size=32)
    val = SyntheticDenseScenes("val", num_samples=4, img_size=32)
    assert torch.equal(train[2]["inputs"], SyntheticDenseScenes("train", num_samples=4, img_size=32)[2]["inputs"])
    train_imgs = {train[i]["inputs"].numpy().tobytes() for i in range(4)}
    assert len(train_imgs) == 4 and not train_imgs & {val[i]["inputs"].numpy().tobytes() for i in range(4)}
    assert train.metainfo["classes"] == CLASSES
    with pytest.raises(IndexError):
        train[4]


def test_labels_agree_with_each_other():
    scene = render_scene(np.random.default_rng(7), 48, 64, max_objects=6)
    sem, depth, edge = scene["sem"], scene["depth"], scene["edge"]
    assert scene["img"].shape == (48, 64, 3) and sem.shape == depth.shape == edge.shape == (48, 64)
    assert ((sem == 0) == (depth == 0)).all()  # sky exactly where there is no depth
    assert (depth[sem > 0] > 0).all() and depth.max() <= 40.0 + 1e-3
    assert set(np.unique(sem)) >= {0, 1} and len(np.unique(sem)) >= 3  # sky, ground and objects
    assert set(np.unique(edge)) <= {0.0, 1.0}
    # Every semantic boundary between 4-neighbours carries an edge on at least one side.
    for a, b in ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])):
        boundary = sem[a] != sem[b]
        assert ((edge[a] + edge[b])[boundary] > 0).all()
    # The ground's depth grows towards the horizon (upwards in the image) in every column.
    for col in range(64):
        ground = np.where(sem[:, col] == 1)[0]
        rows = ground[ground > ground.max() - 5] if len(ground) else ground
        run = depth[rows, col]
        if len(run) > 1 and (np.diff(rows) == 1).all():
            assert (np.diff(run) < 0).all()


def test_bad_settings_name_the_key():
    for kwargs, match in (
        (dict(split="dev"), "split"),
        (dict(num_samples=0), "num_samples"),
        (dict(img_size=8), "img_size"),
        (dict(max_objects=1), "max_objects"),
    ):
        with pytest.raises(ValueError, match=match):
            SyntheticDenseScenes(**kwargs)
