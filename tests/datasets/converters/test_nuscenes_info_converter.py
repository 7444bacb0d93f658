"""Info files (mmdet3d v2 format + extensions): the contract, the frames, and errors on bad input."""

import json
import os
import os.path as osp
import pickle
import warnings

import numpy as np
import pytest
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.utils.geometry_utils import points_in_box, view_points
from pyquaternion import Quaternion

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.datasets.converters.nuscenes_info_converter import (
    CLASSES,
    NuScenesDataError,
    NuScenesInfoConverter,
)
from perception_mtl.datasets.transforms.load_lidar_points_with_sweeps import decode_sweep_code, sweep_to_key_from_poses
from perception_mtl.synthetic.driving.object_catalog import CLASS_SPECS

CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
INFO_KEYS = {
    "sample_idx",
    "token",
    "timestamp",
    "ego2global",
    "lidar_points",
    "lidar_sweeps",
    "images",
    "instances",
    "scene_token",
    "scene_name",
    "map_location",
    "occ_path",
}
IMAGE_KEYS = {"img_path", "cam2img", "cam2ego", "lidar2cam", "sample_data_token", "timestamp", "height", "width"}
INSTANCE_KEYS = {
    "bbox_3d",
    "bbox_label",
    "bbox_label_3d",
    "velocity",
    "num_lidar_pts",
    "num_radar_pts",
    "bbox_3d_isvalid",
}


def _load(root, split):
    with open(osp.join(root, f"nuscenes_infos_{split}.pkl"), "rb") as f:
        return pickle.load(f)


@pytest.fixture(scope="module")
def infos(synthetic_root):
    return {split: _load(synthetic_root, split) for split in ("train", "val")}


def _all(infos):
    return infos["train"]["data_list"] + infos["val"]["data_list"]


def test_info_files_follow_the_contract(infos, synthetic_root, nusc, synthetic_writer):
    for content in infos.values():
        meta = content["metainfo"]
        assert meta["categories"] == {c: i for i, c in enumerate(CLASSES)}
        assert meta["dataset"] == "nuscenes" and meta["version"] == "v1.0-mini" and meta["info_version"] == "1.1"
        assert [d["sample_idx"] for d in content["data_list"]] == list(range(3))
        for info in content["data_list"]:
            assert set(info) == INFO_KEYS
            sample = nusc.get("sample", info["token"])
            assert info["timestamp"] == sample["timestamp"] / 1e6
            assert np.asarray(info["ego2global"]).shape == (4, 4)
            lp = info["lidar_points"]
            assert lp["num_pts_feats"] == 5 and "/" not in lp["lidar_path"]
            assert osp.isfile(osp.join(synthetic_root, "samples", "LIDAR_TOP", lp["lidar_path"]))
            assert np.asarray(lp["lidar2ego"]).shape == (4, 4)
            sweeps = info["lidar_sweeps"]
            # Pre-roll sweeps, then per earlier key frame its sweeps and itself; at most 10.
            n = synthetic_writer.sweeps_per_sample
            k = nusc.get("scene", sample["scene_token"])["nbr_samples"] - _samples_after(nusc, sample) - 1
            assert len(sweeps) == min(10, n + k * (n + 1))
            times = [s["timestamp"] for s in sweeps]
            assert times == sorted(times, reverse=True) and times[0] < info["timestamp"]  # newest first
            for sweep in sweeps:
                assert set(sweep) == {"lidar_points", "ego2global", "timestamp", "sample_data_token"}
                assert set(sweep["lidar_points"]) == {"lidar2ego", "lidar2sensor", "lidar_path"}
                path = sweep["lidar_points"]["lidar_path"]
                assert path.split("/")[0] in ("sweeps", "samples") and osp.isfile(osp.join(synthetic_root, path))
            assert set(info["images"]) == set(CAMERAS)
            for cam, img in info["images"].items():
                assert set(img) == IMAGE_KEYS and (img["height"], img["width"]) == (225, 400)
                assert osp.isfile(osp.join(synthetic_root, "samples", cam, img["img_path"]))
                assert np.asarray(img["cam2img"]).shape == (3, 3)
            assert len(info["instances"]) == len(sample["anns"]) > 0
            for inst in info["instances"]:
                assert set(inst) == INSTANCE_KEYS and len(inst["bbox_3d"]) == 7 and len(inst["velocity"]) == 2
                assert 0 <= inst["bbox_label"] == inst["bbox_label_3d"] < 10
                assert inst["bbox_3d_isvalid"] == (inst["num_lidar_pts"] > 0)
            scene = nusc.get("scene", sample["scene_token"])
            assert info["scene_token"] == scene["token"] and info["scene_name"] == scene["name"]
            assert info["map_location"] == nusc.get("log", scene["log_token"])["location"]
            assert info["occ_path"] == f"gts/{scene['name']}/{info['token']}/labels.npz"


def _samples_after(nusc, sample) -> int:
    count = 0
    while sample["next"]:
        sample = nusc.get("sample", sample["next"])
        count += 1
    return count


def test_boxes_round_trip_to_the_devkit_annotations(infos, nusc):
    for info in _all(infos):
        lidar2global = np.asarray(info["ego2global"]) @ np.asarray(info["lidar_points"]["lidar2ego"])
        anns = [nusc.get("sample_annotation", t) for t in nusc.get("sample", info["token"])["anns"]]
        for inst, ann in zip(info["instances"], anns):
            x, y, z, length, width, height, yaw = inst["bbox_3d"]
            center = lidar2global @ np.array([x, y, z, 1.0])
            assert np.allclose(center[:3], ann["translation"], atol=1e-6)  # z is the gravity centre
            assert np.allclose([width, length, height], ann["size"])
            heading = lidar2global[:3, :3] @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
            ann_yaw = Quaternion(ann["rotation"]).yaw_pitch_roll[0]
            assert abs(np.angle(np.exp(1j * (np.arctan2(heading[1], heading[0]) - ann_yaw)))) < 0.02
            assert CLASSES[inst["bbox_label"]] == category_to_detection_name(ann["category_name"])


def test_velocities_are_in_the_lidar_frame(infos, nusc, synthetic_plans, synthetic_writer):
    _, _, plans = synthetic_plans
    truth = {}
    for plan in plans:
        for a, v in enumerate(plan.actors.velocities()):
            truth[synthetic_writer.tok("instance", plan.index, a)] = v
    moving = 0
    for info in _all(infos):
        lidar2global = np.asarray(info["ego2global"]) @ np.asarray(info["lidar_points"]["lidar2ego"])
        for inst, token in zip(info["instances"], nusc.get("sample", info["token"])["anns"]):
            if np.isnan(inst["velocity"][0]):
                continue
            v_global = lidar2global[:3, :3] @ np.array([*inst["velocity"], 0.0])
            expected = truth[nusc.get("sample_annotation", token)["instance_token"]]
            assert np.allclose(v_global[:2], expected, atol=0.05 + 0.01 * np.linalg.norm(expected))
            moving += np.linalg.norm(expected) > 1.0
    assert moving > 5


def test_lidar2cam_projects_like_the_devkit(infos, nusc):
    info = infos["val"]["data_list"][1]
    for cam in CAMERAS:
        img = info["images"][cam]
        lidar2img = np.eye(4)
        lidar2img[:3, :3] = np.asarray(img["cam2img"])
        lidar2img = lidar2img @ np.asarray(img["lidar2cam"])
        _, boxes, intrinsic = nusc.get_sample_data(img["sample_data_token"])
        by_token = {b.token: b for b in boxes}
        for inst, token in zip(info["instances"], nusc.get("sample", info["token"])["anns"]):
            if token not in by_token:
                continue
            p = lidar2img @ np.append(inst["bbox_3d"][:3], 1.0)
            expected = view_points(by_token[token].center[:, None], intrinsic, normalize=True)[:2, 0]
            assert np.allclose(p[:2] / p[2], expected, atol=0.05)


def test_sweeps_align_static_objects(infos, nusc, synthetic_root):
    """Points of a parked object in an older sweep, moved into the key frame the way mmdet3d's
    LoadPointsFromMultiSweeps decodes ``lidar2sensor``, fall in its key-frame box."""
    checked = 0
    for info in _all(infos):
        sweep = info["lidar_sweeps"][-1]  # the oldest
        pts = np.fromfile(osp.join(synthetic_root, sweep["lidar_points"]["lidar_path"]), dtype=np.float32)
        pts = pts.reshape(-1, 5)[:, :3].astype(np.float64)
        code = np.asarray(sweep["lidar_points"]["lidar2sensor"], dtype=np.float64)
        in_key = pts @ code[:3, :3] - code[:3, 3]
        # Our loader checks the code against the poses and reads it the same way.
        rot, trans = decode_sweep_code(code, sweep_to_key_from_poses(sweep, info))
        assert np.allclose(pts @ rot.T + trans, in_key, atol=1e-4)
        _, boxes, _ = nusc.get_sample_data(nusc.get("sample", info["token"])["data"]["LIDAR_TOP"])
        for inst, box in zip(info["instances"], boxes):
            if inst["num_lidar_pts"] < 30 or np.hypot(*inst["velocity"]) > 0 or np.isnan(inst["velocity"][0]):
                continue
            box.wlh = box.wlh + 0.1
            assert points_in_box(box, in_key.T).sum() > 0.5 * inst["num_lidar_pts"]
            checked += 1
    assert checked > 3


def test_occupancy_labels_match_the_boxes(infos, synthetic_root):
    occ_of_class = {spec.detection_name: spec.occ_label for spec in CLASS_SPECS.values()}
    checked = 0
    for info in _all(infos):
        labels = np.load(osp.join(synthetic_root, info["occ_path"]))
        sem, mask_lidar, mask_camera = labels["semantics"], labels["mask_lidar"], labels["mask_camera"]
        assert sem.shape == mask_lidar.shape == mask_camera.shape == (200, 200, 16)
        assert sem.dtype == mask_lidar.dtype == mask_camera.dtype == np.uint8
        assert sem.max() <= 17 and set(np.unique(mask_camera)) <= {0, 1} and set(np.unique(mask_lidar)) <= {0, 1}
        assert 0.2 < mask_camera.mean() < 0.9 and 0.05 < mask_lidar.mean() < 0.9
        assert (sem[:, :, 2] != 17).all()  # the ground layer is labelled everywhere
        lidar2ego = np.asarray(info["lidar_points"]["lidar2ego"])
        for inst in info["instances"]:
            center = lidar2ego @ np.append(inst["bbox_3d"][:3], 1.0)
            idx = np.floor((center[:3] - np.array([-40.0, -40.0, -1.0])) / 0.4).astype(int)
            if np.all((idx >= 0) & (idx < [200, 200, 16])):
                assert sem[tuple(idx)] == occ_of_class[CLASSES[inst["bbox_label"]]]
                checked += 1
    assert checked > 50


def test_mmdet3d_nuscenes_dataset_reads_the_infos(synthetic_root):
    from mmdet3d.datasets import NuScenesDataset

    dataset = NuScenesDataset(
        data_root=synthetic_root,
        ann_file="nuscenes_infos_train.pkl",
        pipeline=[],
        data_prefix=dict(pts="samples/LIDAR_TOP", sweeps="sweeps/LIDAR_TOP", img="samples"),
        modality=dict(use_lidar=True, use_camera=True),
    )
    assert len(dataset) == 3
    item = dataset.get_data_info(0)
    boxes = item["ann_info"]["gt_bboxes_3d"]
    raw = [i for i in _load(synthetic_root, "train")["data_list"][0]["instances"] if i["num_lidar_pts"] > 0]
    assert len(boxes) == len(raw)
    raw = np.asarray([i["bbox_3d"] for i in raw])
    # mmdet3d turns the gravity centre into its bottom centre.
    assert np.allclose(boxes.tensor[:, 2].numpy(), raw[:, 2] - raw[:, 5] / 2, atol=1e-5)
    assert osp.isfile(item["lidar_points"]["lidar_path"])


def test_cli_writes_the_same_infos(synthetic_root, tmp_path):
    out = create_data(["nuscenes", "--root", synthetic_root, "--version", "v1.0-mini", "--out-dir", str(tmp_path)])
    assert sorted(osp.basename(p) for p in out["files"]) == ["nuscenes_infos_train.pkl", "nuscenes_infos_val.pkl"]
    for split in ("train", "val"):
        a, b = _load(synthetic_root, split), _load(str(tmp_path), split)
        assert pickle.dumps(a) == pickle.dumps(b)


# ----------------------------------------------------------------- bad input
def _shadow(src: str, dst: str) -> str:
    """A copy of the dataset root made of symlinks (cheap); files to corrupt are replaced by real copies."""
    for folder, _, files in os.walk(src):
        target = osp.join(dst, osp.relpath(folder, src))
        os.makedirs(target, exist_ok=True)
        for f in files:
            if not f.endswith(".pkl"):
                os.symlink(osp.join(folder, f), osp.join(target, f))
    return dst


def _replace(root: str, rel: str, data: bytes | None) -> str:
    path = osp.join(root, rel)
    os.unlink(path)
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
    return path


def _first_sample(root):
    with open(osp.join(root, "v1.0-mini", "sample.json")) as f:
        sample = json.load(f)[0]
    with open(osp.join(root, "v1.0-mini", "sample_data.json")) as f:
        sds = [sd for sd in json.load(f) if sd["sample_token"] == sample["token"] and sd["is_key_frame"]]
    return sample["token"], {sd["filename"].split("/")[1]: sd["filename"] for sd in sds}


def _convert(root, out, skip_bad=False):
    return NuScenesInfoConverter(root, "v1.0-mini", out, skip_bad=skip_bad).run()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_points", "LiDAR file missing"),
        ("truncated_points", "truncated LiDAR file"),
        ("nan_points", "non-finite values"),
        ("missing_image", "image missing"),
        ("truncated_image", "truncated or corrupt JPEG"),
    ],
)
def test_bad_files_name_the_file_and_sample(synthetic_root, tmp_path, case, message):
    root = _shadow(synthetic_root, str(tmp_path / "root"))
    token, files = _first_sample(root)
    rel = files["LIDAR_TOP"] if "points" in case else files["CAM_BACK"]
    with open(osp.join(root, rel), "rb") as f:
        data = f.read()
    if case == "missing_points" or case == "missing_image":
        path = _replace(root, rel, None)
    elif case == "truncated_points":
        path = _replace(root, rel, data[:-6])
    elif case == "nan_points":
        points = np.frombuffer(data, dtype=np.float32).copy()
        points[7] = np.nan
        path = _replace(root, rel, points.tobytes())
    else:
        path = _replace(root, rel, data[: len(data) // 2])
    with pytest.raises(NuScenesDataError, match=message) as err:
        _convert(root, str(tmp_path))
    assert path in str(err.value) and token in str(err.value)
    assert err.value.path == path and err.value.sample_token == token


def test_skip_bad_samples_warns_and_counts(synthetic_root, tmp_path):
    root = _shadow(synthetic_root, str(tmp_path / "root"))
    token, files = _first_sample(root)
    _replace(root, files["CAM_FRONT"], None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _convert(root, str(tmp_path), skip_bad=True)
    assert len(report.skipped) == 1 and token in report.skipped[0]
    assert any("1 bad samples skipped" in str(w.message) for w in caught)
    assert sorted(report.files.values()) == [2, 3]
    written = [d["token"] for split in ("train", "val") for d in _load(str(tmp_path), split)["data_list"]]
    assert token not in written and len(written) == 5


def _edit_table(root, name, edit):
    path = osp.join(root, "v1.0-mini", f"{name}.json")
    with open(path) as f:
        records = json.load(f)
    edit(records)
    _replace(root, f"v1.0-mini/{name}.json", json.dumps(records).encode())
    return path


def test_unknown_category_names_the_table_and_sample(synthetic_root, tmp_path):
    root = _shadow(synthetic_root, str(tmp_path / "root"))

    def rename(records):
        for r in records:
            if r["name"] == "vehicle.car":
                r["name"] = "vehicle.hovercraft"

    path = _edit_table(root, "category", rename)
    with pytest.raises(NuScenesDataError, match="unknown category 'vehicle.hovercraft'") as err:
        _convert(root, str(tmp_path))
    assert err.value.path == path and err.value.sample_token


def test_broken_tables_name_the_table(synthetic_root, tmp_path):
    root = _shadow(synthetic_root, str(tmp_path / "root"))
    path = _replace(root, "v1.0-mini/sample.json", b'[{"token": "abc", "timest')
    with pytest.raises(NuScenesDataError, match="not valid JSON") as err:
        _convert(root, str(tmp_path))
    assert err.value.path == path

    root2 = _shadow(synthetic_root, str(tmp_path / "root2"))

    def dangle(records):
        records[5]["calibrated_sensor_token"] = "no-such-token"

    path = _edit_table(root2, "sample_data", dangle)
    with pytest.raises(NuScenesDataError, match="calibrated_sensor_token no-such-token is not in") as err:
        _convert(root2, str(tmp_path))
    assert err.value.path == path and err.value.sample_token


def test_cli_shows_progress(synthetic_root, tmp_path, capsys):
    create_data(["nuscenes", "--root", synthetic_root, "--version", "v1.0-mini", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "task/s" in out and "ETA" in out  # mmengine's ProgressBar over the key frames
