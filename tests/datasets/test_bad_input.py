"""Bad input to the nuScenes multi-task data path (issue 27): each error names the file, the sample
or the config key, nothing already on disk is changed by the failure, and a dataset told to skip
bad samples lists them in the work dir and reports them after each epoch and at the end.

Cases already covered elsewhere: a missing / truncated / NaN sweep file, a missing camera image or
labels.npz, a broken info file, a record without ego2global, a label outside the class list and a
sweep without its transform (tests/datasets/test_nuscenes_mtl_dataset.py); an unknown category in
the tables (tests/datasets/converters/test_nuscenes_info_converter.py).
"""

import hashlib
import os
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from perception_mtl.datasets import BadSampleError, NuScenesMTLDataset
from perception_mtl.datasets.converters.nuscenes_info_converter import NuScenesDataError, NuScenesInfoConverter
from perception_mtl.engine import BadSampleReportHook
from perception_mtl.testing.tiny_nuscenes import write_tiny_nuscenes

LIDAR = "samples/LIDAR_TOP/tok0.pcd.bin"
OCC = "gts/scene-0001/tok0/labels.npz"


def _pipeline(root):
    return [
        dict(type="LoadLidarPointsWithSweeps", sweeps_num=1, test_mode=True),
        dict(type="LoadMultiViewImages"),
        dict(type="LoadOccupancy"),
    ]


@pytest.fixture()
def tiny(tmp_path):
    init_default_scope("perception_mtl")
    root = str(tmp_path / "nus")
    os.makedirs(root)
    return root, write_tiny_nuscenes(root)


def _dataset(root, info, **kwargs):
    kwargs.setdefault("pipeline", _pipeline(root))
    return NuScenesMTLDataset(data_root=root, ann_file=info, filter_empty_gt=False, **kwargs)


def _digests(root):
    """Every file under root -> its sha1, to show a failure changed nothing on disk."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


def _edit_info(info, edit):
    with open(info, "rb") as f:
        data = pickle.load(f)
    edit(data)
    with open(info, "wb") as f:
        pickle.dump(data, f)


def _write_points(root, array):
    np.asarray(array, np.float32).tofile(os.path.join(root, LIDAR))


def _write_occ(root, **arrays):
    np.savez(os.path.join(root, OCC), **arrays)


def _grid(shape=(200, 200, 16)):
    return dict(
        semantics=np.full(shape, 17, np.uint8), mask_lidar=np.ones(shape, bool), mask_camera=np.ones(shape, bool)
    )


# (damage to the tiny dataset, what the error must say); each error also names the file and "sample tok0".
SAMPLE_CASES = {
    "truncated pcd.bin": (lambda r: open(os.path.join(r, LIDAR), "ab").write(b"xyz"), "truncated or not 5 float32"),
    # 100 points of 4 floats = 1600 bytes = 80 points of 5: only the ring column gives it away.
    "4-wide pcd.bin": (
        lambda r: _write_points(r, np.random.default_rng(0).random((100, 4))),
        r"column 4 \(ring index\) is not a whole number",
    ),
    "empty point cloud": (lambda r: open(os.path.join(r, LIDAR), "wb").close(), "LiDAR file is empty"),
    "NaN points": (lambda r: _write_points(r, np.full((10, 5), np.nan)), "10 LiDAR points hold NaN or inf"),
    "zero-byte image": (
        lambda r: open(os.path.join(r, "samples/CAM_BACK/tok0.jpg"), "wb").close(),
        "CAM_BACK image is missing or unreadable",
    ),
    "labels.npz without mask_camera": (
        lambda r: _write_occ(r, **{k: v for k, v in _grid().items() if k != "mask_camera"}),
        "missing a key.*mask_camera",
    ),
    "labels.npz of the wrong shape": (
        lambda r: _write_occ(r, **_grid((100, 100, 8))),
        r"'semantics' has shape \(100, 100, 8\), expected \(200, 200, 16\)",
    ),
}


@pytest.mark.parametrize("case", sorted(SAMPLE_CASES))
def test_bad_sample_files_are_named(tiny, case):
    root, info = tiny
    damage, message = SAMPLE_CASES[case]
    damage(root)
    before = _digests(root)
    with pytest.raises(BadSampleError, match=message) as err:
        _dataset(root, info)[0]
    assert "sample tok0" in str(err.value) and f"file {root}" in str(err.value)
    assert _digests(root) == before  # the failure wrote nothing and removed nothing


def test_good_points_still_load(tiny):
    root, info = tiny
    assert _dataset(root, info)[0]["points"].shape[1] == 5


INFO_CASES = {
    "lacks lidar_points": (
        lambda d: d["data_list"][0].pop("lidar_points"),
        BadSampleError,
        r"lacks \['lidar_points'\]",
    ),
    "v1 format": (
        lambda d: d.update(infos=d.pop("data_list"), metadata=d.pop("metainfo")),
        ValueError,
        "mmdet3d v1 info file from another format version",
    ),
    "info_version 2.0": (lambda d: d["metainfo"].update(info_version="2.0"), ValueError, "has info_version '2.0'"),
    "NaN box": (
        lambda d: d["data_list"][0]["instances"][0].update(bbox_3d=[1, 2, 0, float("nan"), 2, 1.5, 0]),
        BadSampleError,
        "instance 0 has bbox_3d .*needs 7 finite values",
    ),
    "zero-size box": (
        lambda d: d["data_list"][0]["instances"][0].update(bbox_3d=[1, 2, 0, 4, 0, 1.5, 0]),
        BadSampleError,
        "instance 0 has bbox_3d size .*must be positive",
    ),
    "box in global coordinates": (
        lambda d: d["data_list"][0]["instances"][0].update(bbox_3d=[1010.5, 620.3, 1, 4, 2, 1.5, 0]),
        BadSampleError,
        r"instance 0 box centre \[1010.5, 620.3, 1.0\] is 1186 m from the LiDAR .*not global coordinates",
    ),
}


@pytest.mark.parametrize("case", sorted(INFO_CASES))
def test_bad_info_files_are_named(tiny, case):
    root, info = tiny
    edit, error, message = INFO_CASES[case]
    _edit_info(info, edit)
    before = _digests(root)
    with pytest.raises(error, match=message) as err:
        _dataset(root, info)
    assert "tiny_infos.pkl" in str(err.value)
    assert _digests(root) == before


def test_box_outside_the_range_is_not_an_error(tiny):
    """60 m out, beyond a 54 m point-cloud range: the range filter's business, not bad input."""
    root, info = tiny
    _edit_info(info, lambda d: d["data_list"][0]["instances"][0].update(bbox_3d=[60.0, 0, 0, 4, 2, 1.5, 0]))
    assert len(_dataset(root, info).get_data_info(0)["ann_info"]["gt_bboxes_3d"]) == 1


def test_unknown_class_lists_close_matches(tiny):
    root, info = tiny
    with pytest.raises(ValueError, match=r"unknown class 'pedestrain' in metainfo.classes; did you mean 'pedestrian'"):
        _dataset(root, info, metainfo=dict(classes=["car", "pedestrain"]))


def test_missing_data_root_is_named(tmp_path):
    init_default_scope("perception_mtl")
    missing = str(tmp_path / "no_such_nuscenes")
    with pytest.raises(FileNotFoundError, match=f"data root not found: {missing}"):
        _dataset(missing, "nuscenes_infos_train.pkl")


def test_create_data_nuscenes_on_a_folder_that_is_not_a_nuscenes_root(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpg")
    out = tmp_path / "infos"
    out.mkdir()
    (out / "nuscenes_infos_train.pkl").write_bytes(b"earlier infos")  # must survive the failure
    converter = NuScenesInfoConverter(str(folder), "v1.0-mini", str(out))
    with pytest.raises(NuScenesDataError, match=f"{folder} is not a nuScenes root for v1.0-mini .*found holiday.jpg"):
        converter.run()
    assert sorted(os.listdir(out)) == ["nuscenes_infos_train.pkl"]
    assert (out / "nuscenes_infos_train.pkl").read_bytes() == b"earlier infos"
    with pytest.raises(NuScenesDataError, match="nuScenes root not found"):
        NuScenesInfoConverter(str(tmp_path / "nope"), "v1.0-mini", str(out)).run()


def test_skipped_samples_are_listed_and_reported(tiny, tmp_path, monkeypatch):
    """skip_bad_samples=True: training goes on, each skipped sample gets a line in the work dir's
    bad_samples_train.log and the hook reports the count and the lines after the epoch and at the end."""
    root, info = tiny
    os.remove(os.path.join(root, "samples/CAM_FRONT/tok0.jpg"))
    dataset = _dataset(root, info, skip_bad_samples=True, max_refetch=1)
    work = tmp_path / "work"
    work.mkdir()
    runner = SimpleNamespace(
        train_loop=SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset)), work_dir=str(work), epoch=1
    )
    hook = BadSampleReportHook(show=1)
    hook.before_train(runner)
    reports = []
    monkeypatch.setattr(
        "perception_mtl.engine.hooks.bad_sample_report_hook.print_log", lambda msg, **k: reports.append(msg)
    )
    with pytest.warns(UserWarning, match="skipping bad sample"), pytest.raises(Exception, match="Cannot find valid"):
        dataset[0]  # the only sample is bad
    lines = (work / "bad_samples_train.log").read_text().splitlines()
    assert len(lines) == 2 and all("CAM_FRONT image is missing or unreadable" in line for line in lines)
    assert lines[0].startswith("index 0: file ") and "sample tok0" in lines[0]
    hook.after_train_epoch(runner)
    hook.after_train(runner)
    assert len(reports) == 2
    assert reports[0].startswith("after epoch 1: 2 bad training sample(s) skipped so far")
    assert "CAM_FRONT" in reports[1] and "(1 more)" in reports[1]
