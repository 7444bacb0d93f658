"""The synthetic dataset read by the unmodified nuscenes-devkit: tables, point clouds, maps, images, eval."""

import json
import os.path as osp

import cv2
import numpy as np
from nuscenes.eval.detection.config import config_factory
from nuscenes.eval.detection.evaluate import DetectionEval
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.map_expansion.map_api import NuScenesMap
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import BoxVisibility, box_in_image, points_in_box
from nuscenes.utils.splits import create_splits_scenes
from pyquaternion import Quaternion

from perception_mtl.synthetic.driving.sample_simulator import SampleSimulator

CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")


def test_tables_scenes_and_splits(nusc, synthetic_root, synthetic_writer):
    splits = create_splits_scenes()
    names = [s["name"] for s in nusc.scene]
    assert len(names) == 2
    assert sum(n in splits["mini_train"] for n in names) == 1 and sum(n in splits["mini_val"] for n in names) == 1
    for sample in nusc.sample:
        assert set(sample["data"]) == {"LIDAR_TOP", *CAMERAS}
        assert len(sample["anns"]) > 5
    for scene in nusc.scene:
        # The LIDAR_TOP chain: sweeps and key frames in time order, linked both ways.
        sd = nusc.get("sample_data", nusc.get("sample", scene["first_sample_token"])["data"]["LIDAR_TOP"])
        while sd["prev"]:
            sd = nusc.get("sample_data", sd["prev"])
        chain = [sd]
        while chain[-1]["next"]:
            chain.append(nusc.get("sample_data", chain[-1]["next"]))
        assert all(a["timestamp"] < b["timestamp"] for a, b in zip(chain, chain[1:]))
        assert sum(c["is_key_frame"] for c in chain) == scene["nbr_samples"] == 3
        assert sum(not c["is_key_frame"] for c in chain) == 3 * synthetic_writer.sweeps_per_sample
        for c in chain:
            assert c["filename"].startswith("samples/" if c["is_key_frame"] else "sweeps/")
            assert osp.isfile(osp.join(synthetic_root, c["filename"]))
    for sd in nusc.sample_data:
        if sd["channel"].startswith("CAM"):
            img = cv2.imread(osp.join(synthetic_root, sd["filename"]))
            assert img.shape == (sd["height"], sd["width"], 3) == (225, 400, 3)
    for ann in nusc.sample_annotation:
        assert category_to_detection_name(ann["category_name"]) is not None
        assert len(ann["attribute_tokens"]) <= 1


def test_point_clouds_and_point_counts(nusc):
    near_with_points = []
    for sample in nusc.sample:
        lidar_token = sample["data"]["LIDAR_TOP"]
        pc = LidarPointCloud.from_file(nusc.get_sample_data_path(lidar_token))
        assert pc.points.shape[0] == 4 and pc.points.shape[1] > 10_000
        assert np.isfinite(pc.points).all()
        raw = np.fromfile(nusc.get_sample_data_path(lidar_token), dtype=np.float32).reshape(-1, 5)
        assert set(np.unique(raw[:, 4])) <= set(range(32))
        _, boxes, _ = nusc.get_sample_data(lidar_token)
        for box in boxes:
            ann = nusc.get("sample_annotation", box.token)
            assert int(points_in_box(box, pc.points[:3]).sum()) == ann["num_lidar_pts"]
            if np.linalg.norm(box.center[:2]) < 25:
                near_with_points.append(ann["num_lidar_pts"] > 0)
    assert np.mean(near_with_points) > 0.6  # most near objects are seen; some are occluded


def test_map_expansion_loads_and_matches_the_scene(nusc, synthetic_root):
    for log in nusc.log:
        nmap = NuScenesMap(dataroot=synthetic_root, map_name=log["location"])
        scene = next(s for s in nusc.scene if s["log_token"] == log["token"])
        sample = nusc.get("sample", scene["first_sample_token"])
        pose = nusc.get("ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"])
        x, y = pose["translation"][:2]
        layers = [
            "drivable_area",
            "ped_crossing",
            "walkway",
            "stop_line",
            "carpark_area",
            "road_divider",
            "lane_divider",
        ]
        yaw = np.degrees(Quaternion(pose["rotation"]).yaw_pitch_roll[0])
        mask = nmap.get_map_mask((x, y, 100, 100), yaw, layers, (200, 200))
        assert mask.shape == (7, 200, 200)
        assert mask[0].mean() > 0.1 and mask[2].mean() > 0.02 and (mask[5].any() or mask[6].any())
        assert nmap.layers_on_point(x, y)["drivable_area"] != ""  # the ego drives on the road
        lane = nmap.get_closest_lane(x, y, radius=3)
        assert lane and len(nmap.discretize_lanes([lane], 1.0)[lane]) > 2
        records = nmap.get_records_in_patch((x - 60, y - 60, x + 60, y + 60), layers, mode="intersect")
        assert records["ped_crossing"] and records["walkway"] and records["stop_line"]
        # Vehicles stand on the drivable area, pedestrians on walkways, crossings or the road.
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            name = category_to_detection_name(ann["category_name"])
            on = nmap.layers_on_point(*ann["translation"][:2])
            if name in ("car", "bus", "truck"):
                assert on["drivable_area"], ann["category_name"]
            if name == "pedestrian":
                assert on["walkway"] or on["ped_crossing"] or on["drivable_area"] or _near(nmap, ann)


def _near(nmap, ann, radius=1.5):
    x, y = ann["translation"][:2]
    rec = nmap.get_records_in_patch((x - radius, y - radius, x + radius, y + radius), ["walkway"], "intersect")
    return bool(rec["walkway"])


def test_box_in_image_agrees_with_rendered_objects(nusc, synthetic_plans, synthetic_writer, synthetic_root):
    """An object rendered in a camera is in that camera's box_in_image, and a box fully in an image is rendered."""
    _, grounds, plans = synthetic_plans
    checked_rendered, checked_inside = 0, 0
    actor_of = {synthetic_writer.tok("instance", p.index, a): a for p in plans for a in range(len(p.actors))}
    for plan in plans:
        sim = SampleSimulator(grounds[plan.location], (400, 225), with_occupancy=False)
        out = sim.simulate(plan, 1)
        scene = next(s for s in nusc.scene if s["name"] == plan.name)
        sample = nusc.get("sample", nusc.get("sample", scene["first_sample_token"])["next"])
        # Deterministic: re-simulating here gives the very points the (multi-process) writer stored.
        stored = np.fromfile(nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"]), dtype=np.float32)
        assert np.array_equal(stored.reshape(-1, 5), out.lidar.data.points)
        for cam in CAMERAS:
            frame = out.cameras[cam].data
            sd = nusc.get("sample_data", sample["data"][cam])
            on_disk = cv2.imread(osp.join(synthetic_root, sd["filename"]))[:, :, ::-1].astype(float)
            assert np.abs(on_disk - frame.image).mean() < 4.0  # the masks belong to the image on disk
            _, boxes, intrinsic = nusc.get_sample_data(sd["token"], box_vis_level=BoxVisibility.NONE)
            for box in boxes:
                actor = actor_of[nusc.get("sample_annotation", box.token)["instance_token"]]
                any_in = box_in_image(box, intrinsic, (400, 225), BoxVisibility.ANY)
                all_in = box_in_image(box, intrinsic, (400, 225), BoxVisibility.ALL)
                if frame.visible_pixels[actor] >= 5:
                    checked_rendered += 1
                    assert any_in or _spans_image(box, intrinsic), (cam, box.name)
                if all_in and box.center[2] > 1.0:
                    checked_inside += 1
                    assert frame.covered_pixels[actor] > 0, (cam, box.name)
                if not any_in and not _spans_image(box, intrinsic):
                    assert frame.covered_pixels[actor] == 0, (cam, box.name)
    assert checked_rendered > 20 and checked_inside > 10


def _spans_image(box, intrinsic) -> bool:
    """A box in front of the camera whose outline covers the image without any corner inside it."""
    corners = box.corners()
    front = corners[2] > 0.1
    if not front.any():
        return False
    uv = intrinsic[:2, :2] @ (corners[:2, front] / corners[2, front]) + intrinsic[:2, 2:3]
    return (uv[0].min() < 0 < uv[0].max() or uv[0].min() < 400 < uv[0].max()) and uv[1].min() < 225 and uv[1].max() > 0


def test_ground_truth_submission_scores_perfectly(nusc, synthetic_root, tmp_path):
    """DetectionEval on mini_val with the annotations as the submission: every class present has AP 1."""
    splits = create_splits_scenes()
    results = {}
    for sample in nusc.sample:
        if nusc.get("scene", sample["scene_token"])["name"] not in splits["mini_val"]:
            continue
        entries = []
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            if ann["num_lidar_pts"] + ann["num_radar_pts"] == 0:
                continue  # the evaluator drops these from the ground truth
            attr = nusc.get("attribute", ann["attribute_tokens"][0])["name"] if ann["attribute_tokens"] else ""
            entries.append(
                {
                    "sample_token": sample["token"],
                    "translation": ann["translation"],
                    "size": ann["size"],
                    "rotation": ann["rotation"],
                    "velocity": list(nusc.box_velocity(token)[:2]),
                    "detection_name": category_to_detection_name(ann["category_name"]),
                    "detection_score": 1.0,
                    "attribute_name": attr,
                }
            )
        results[sample["token"]] = entries
    submission = {
        "meta": {"use_camera": True, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False},
        "results": results,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(submission))
    evaluator = DetectionEval(
        nusc, config_factory("detection_cvpr_2019"), str(path), "mini_val", str(tmp_path / "eval"), verbose=False
    )
    metrics, _ = evaluator.evaluate()
    summary = metrics.serialize()
    present = [c for c, ap in summary["mean_dist_aps"].items() if evaluator.gt_boxes and _has_gt(evaluator, c)]
    assert len(present) >= 4
    assert np.mean([summary["mean_dist_aps"][c] for c in present]) > 0.99
    for c in present:
        assert summary["label_tp_errors"][c]["trans_err"] < 0.01


def _has_gt(evaluator, name) -> bool:
    return any(b.detection_name == name for b in evaluator.gt_boxes.all)
