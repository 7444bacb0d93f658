"""CVGL layout: synthetic writer -> memory-mapped dataset round trip, the split, and bad input."""

import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.datasets import BadSampleError, CVGLStereoDataset
from perception_mtl.datasets.cvgl_stereo_dataset import CVGL_FIELDS, PARAM_NAMES, cvgl_path
from perception_mtl.structures.camera_geometry import (
    intrinsic_matrix,
    project_points,
    projection_matrix,
    rotation_x,
)
from perception_mtl.synthetic.stereo import SyntheticCVGLWriter, render_sample, synthetic_cvgl_writer
from perception_mtl.testing.camera_calibration import TINY_SIZE, tiny_cvgl_root


def _copy(tmp_path) -> str:
    root = str(tmp_path / "cvgl")
    shutil.copytree(tiny_cvgl_root(), root)
    return root


def test_layout_round_trip_and_fixed_disjoint_split():
    root = tiny_cvgl_root()
    for field in CVGL_FIELDS:
        assert osp.isfile(cvgl_path(root, field)), field
    meta = json.load(open(osp.join(root, "meta.json")))
    assert meta["complete"] and meta["num_written"] == 12 and meta["split_sizes"] == dict(train=9, test=3)
    train, test = CVGLStereoDataset(root, "train"), CVGLStereoDataset(root, "test")
    train_rows = {int(train.indices[i]) for i in range(len(train))}
    test_rows = {int(test.indices[i]) for i in range(len(test))}
    assert not train_rows & test_rows and train_rows | test_rows == set(range(12))
    assert sorted(test_rows) != list(range(9, 12))  # shuffled, not the last rows
    # Same settings, same split and same rows.
    np.testing.assert_array_equal(
        SyntheticCVGLWriter("unused", 12, *TINY_SIZE, 0.25, seed=3).split()["test"], sorted(test_rows)
    )
    item = test[1]
    row = int(test.indices[1])
    again = render_sample(3, row, *TINY_SIZE, SyntheticCVGLWriter("unused", 12).ranges)
    np.testing.assert_array_equal(item["inputs"][0].permute(1, 2, 0).numpy(), again["left_img"])
    np.testing.assert_array_equal(item["inputs"][1].permute(1, 2, 0).numpy(), again["right_img"])
    mapping = dict(
        fx="fx",
        fy="fy",
        u0="U0",
        v0="V0",
        baseline="baseline",
        disparity="disparity",
        tx="x",
        ty="y",
        tz="z",
        pitch="pitch",
    )
    expected = [again["params"][mapping[n]] for n in PARAM_NAMES]
    np.testing.assert_allclose(item["data_samples"].gt_calib.numpy(), expected, rtol=1e-6)
    assert item["data_samples"].metainfo["img_shape"] == (TINY_SIZE[1], TINY_SIZE[0])


def test_stored_parameters_are_geometrically_consistent(tmp_path):
    root = str(tmp_path / "full_size")
    SyntheticCVGLWriter(root, 6, 128, 96, seed=5).run()  # full size: the marker post is several pixels wide
    ds = CVGLStereoDataset(root, "all")
    for i in range(len(ds)):
        fx, fy, u0, v0, b, d, tx, ty, tz, pitch = ds.get_params(i)
        assert d == pytest.approx(fx * b / tz)
        # t = -R C with C the stored camera centre (xworld, yworld, zworld).
        centre = ds[i]["data_samples"].gt_world_point.double()
        rot = rotation_x(torch.tensor([pitch], dtype=torch.float64))[0]
        np.testing.assert_allclose(-(rot @ centre).numpy(), [tx, ty, tz], rtol=1e-5, atol=1e-5)
        # The marker (world origin) is drawn where P puts it: its orange shows at the projected pixel,
        # left view at (u, v), right view d pixels to the left.
        k = intrinsic_matrix(*(torch.tensor([x], dtype=torch.float64) for x in (fx, fy, u0, v0)))
        proj = projection_matrix(k, rot[None], torch.tensor([[tx, ty, tz]], dtype=torch.float64))
        up = torch.tensor([[[0.0, -0.25, 0.0]]], dtype=torch.float64)  # 25 cm up the marker post
        u, v = project_points(proj, up)[0, 0].tolist()
        pair = ds[i]["inputs"].numpy().astype(int)
        for view, col in ((0, u), (1, u - d)):
            r, g, bl = pair[view, :, int(round(v)), int(round(col))]
            assert r > bl + 60, (i, view, r, g, bl)


def test_create_data_cli_writes_the_layout(tmp_path):
    out = str(tmp_path / "cli")
    meta = create_data(
        ["cvgl", "--out-dir", out, "--num-samples", "4", "--width", "32", "--height", "24", "--workers", "1"]
    )
    assert meta["split_sizes"] == dict(train=3, test=1)
    assert np.load(cvgl_path(out, "left_img"), mmap_mode="r").shape == (4, 24, 32, 3)


def test_missing_array_names_the_file(tmp_path):
    root = _copy(tmp_path)
    os.remove(cvgl_path(root, "baseline"))
    with pytest.raises(BadSampleError, match=r"baseline\.npy.*missing"):
        CVGLStereoDataset(root, "train")


def test_arrays_of_different_length_name_the_file_and_index(tmp_path):
    root = _copy(tmp_path)
    np.save(cvgl_path(root, "fy"), np.load(cvgl_path(root, "fy"))[:10])
    with pytest.raises(
        BadSampleError, match=r"fy\.npy, sample 10: has 10 rows but .*\.npy has 12: index 10 is missing"
    ):
        CVGLStereoDataset(root, "train")
    root2 = _copy(tmp_path / "b")
    np.save(cvgl_path(root2, "right_img"), np.load(cvgl_path(root2, "right_img"))[:11])
    with pytest.raises(BadSampleError, match=r"right_img\.npy, sample 11"):
        CVGLStereoDataset(root2, "test")


def test_bad_values_and_splits_name_the_file_and_index(tmp_path):
    root = _copy(tmp_path)
    tz = np.load(cvgl_path(root, "z"))
    tz[5] = np.nan
    np.save(cvgl_path(root, "z"), tz)
    ds = CVGLStereoDataset(root, "all")
    ds[4]
    with pytest.raises(BadSampleError, match=r"z\.npy, sample 5: non-finite value at index 5"):
        ds[5]
    np.save(osp.join(root, "splits", "test.npy"), np.array([1, 99]))
    with pytest.raises(BadSampleError, match=r"test\.npy, sample 1: .*entry 1 is out of range"):
        CVGLStereoDataset(root, "test")
    os.remove(osp.join(root, "splits", "train.npy"))
    with pytest.raises(BadSampleError, match=r"train\.npy.*missing"):
        CVGLStereoDataset(root, "train")
    ordered = CVGLStereoDataset(root, "test", ordered_train_ratio=0.75)  # the original CVGL protocol
    assert list(ordered.indices) == [9, 10, 11]


def test_a_failed_render_keeps_every_earlier_row(tmp_path, monkeypatch):
    real = synthetic_cvgl_writer.render_sample

    def flaky(seed, index, *args):
        if index == 5:
            raise RuntimeError("renderer broke")
        return real(seed, index, *args)

    monkeypatch.setattr(synthetic_cvgl_writer, "render_sample", flaky)
    out = str(tmp_path / "partial")
    with pytest.raises(BadSampleError, match=r"left_img\.npy, sample 5: rendering failed"):
        SyntheticCVGLWriter(out, 8, *TINY_SIZE, seed=3).run()
    meta = json.load(open(osp.join(out, "meta.json")))
    assert meta["complete"] is False and meta["num_written"] == 5
    left = np.load(cvgl_path(out, "left_img"), mmap_mode="r")
    fx = np.load(cvgl_path(out, "fx"), mmap_mode="r")
    for i in range(5):
        again = real(3, i, *TINY_SIZE, SyntheticCVGLWriter("unused", 8).ranges)
        np.testing.assert_array_equal(left[i], again["left_img"])
        assert fx[i] == again["params"]["fx"]
    for split in ("train", "test"):
        assert np.load(osp.join(out, "splits", f"{split}.npy")).max() < 5
