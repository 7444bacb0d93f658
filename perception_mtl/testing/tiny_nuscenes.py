"""A tiny nuScenes database (v1.0-mini tables, mini_val scenes) with an mmdet3d-style info file.

Enough for nuscenes-devkit's ``DetectionEval``: two mini_val scenes with three key frames each,
moving ego poses, a LiDAR mounted with a 90-degree yaw (as in nuScenes) and objects of every
detection class moving at constant velocity. The info file holds each sample's ``lidar2ego``,
``ego2global`` and instances in the LiDAR frame (gravity-centre z, velocity), converted from
the global annotations independently of the metric under test.
"""

from __future__ import annotations

import json
import os
import pickle

import cv2
import numpy as np
from pyquaternion import Quaternion

CATEGORIES = {
    "car": "vehicle.car",
    "truck": "vehicle.truck",
    "construction_vehicle": "vehicle.construction",
    "bus": "vehicle.bus.rigid",
    "trailer": "vehicle.trailer",
    "barrier": "movable_object.barrier",
    "motorcycle": "vehicle.motorcycle",
    "bicycle": "vehicle.bicycle",
    "pedestrian": "human.pedestrian.adult",
    "traffic_cone": "movable_object.trafficcone",
}
CLASSES = list(CATEGORIES)
SIZES = {  # (w, l, h)
    "car": (1.9, 4.6, 1.7),
    "truck": (2.5, 7.0, 3.0),
    "construction_vehicle": (2.8, 6.5, 3.2),
    "bus": (2.9, 11.0, 3.5),
    "trailer": (2.3, 12.0, 3.8),
    "barrier": (2.5, 0.5, 1.0),
    "motorcycle": (0.8, 2.1, 1.5),
    "bicycle": (0.6, 1.7, 1.3),
    "pedestrian": (0.7, 0.7, 1.8),
    "traffic_cone": (0.4, 0.4, 1.0),
}
ATTRIBUTES = [
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
    "pedestrian.moving",
    "pedestrian.standing",
    "cycle.with_rider",
    "cycle.without_rider",
]


def _pose(yaw: float, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Quaternion(axis=[0, 0, 1], radians=yaw).rotation_matrix
    m[:3, 3] = translation
    return m


def write_tiny_nuscenes_db(root: str, seed: int = 0) -> str:
    """Writes the tables under ``root/v1.0-mini`` and ``root/tiny_infos_val.pkl``; returns the info path."""
    rng = np.random.default_rng(seed)
    tables: dict[str, list] = {name: [] for name in (
        "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
        "scene", "sample", "sample_data", "sample_annotation", "map",
    )}  # fmt: skip
    for name in CLASSES:
        tables["category"].append(dict(token=f"cat_{name}", name=CATEGORIES[name], description=""))
    for name in ATTRIBUTES:
        tables["attribute"].append(dict(token=f"attr_{name}", name=name, description=""))
    tables["visibility"] = [dict(token=str(i), level=f"v{i}", description="") for i in range(1, 5)]
    tables["sensor"].append(dict(token="sensor_lidar", channel="LIDAR_TOP", modality="lidar"))
    # nuScenes' LiDAR x axis points to the ego's right: a -90 degree yaw, plus an offset.
    lidar2ego = _pose(-np.pi / 2, [0.94, 0.0, 1.84])
    tables["calibrated_sensor"].append(
        dict(
            token="cs_lidar",
            sensor_token="sensor_lidar",
            translation=lidar2ego[:3, 3].tolist(),
            rotation=Quaternion(matrix=lidar2ego[:3, :3]).elements.tolist(),
            camera_intrinsic=[],
        )
    )
    tables["map"].append(dict(token="map0", log_tokens=[], category="semantic_prior", filename="maps/none.png"))
    infos = []
    dt = 0.5
    for scene_name in ("scene-0103", "scene-0916"):
        log = f"log_{scene_name}"
        tables["log"].append(dict(token=log, logfile="", vehicle="", date_captured="", location="singapore-onenorth"))
        tables["map"][0]["log_tokens"].append(log)
        ego_start = rng.uniform(300, 1500, 2)
        ego_yaw = rng.uniform(-np.pi, np.pi)
        ego_speed = rng.uniform(2, 8)
        objects = []
        for name in CLASSES:
            for _ in range(2):
                radius = rng.uniform(8, 25 if name in ("barrier", "traffic_cone") else 35)
                angle = rng.uniform(-np.pi, np.pi)
                static = name in ("barrier", "traffic_cone")
                objects.append(
                    dict(
                        name=name,
                        instance=f"inst_{scene_name}_{len(objects)}",
                        offset=np.array([radius * np.cos(angle), radius * np.sin(angle)]),
                        yaw=rng.uniform(-np.pi, np.pi),
                        velocity=np.zeros(2) if static else rng.uniform(-4, 4, 2),
                    )
                )
        samples = [f"{scene_name}_s{i}" for i in range(3)]
        tables["scene"].append(
            dict(
                token=f"tok_{scene_name}",
                name=scene_name,
                description="",
                log_token=log,
                nbr_samples=len(samples),
                first_sample_token=samples[0],
                last_sample_token=samples[-1],
            )
        )
        for obj in objects:
            tables["instance"].append(
                dict(
                    token=obj["instance"],
                    category_token=f"cat_{obj['name']}",
                    nbr_annotations=len(samples),
                    first_annotation_token=f"{obj['instance']}_a0",
                    last_annotation_token=f"{obj['instance']}_a{len(samples) - 1}",
                )
            )
        for i, token in enumerate(samples):
            t = i * dt
            timestamp = int(1e6 * (1000 + t))
            heading = np.array([np.cos(ego_yaw), np.sin(ego_yaw)])
            ego2global = _pose(ego_yaw, [*(ego_start + ego_speed * t * heading), 0.5])
            tables["ego_pose"].append(
                dict(
                    token=f"ego_{token}",
                    timestamp=timestamp,
                    translation=ego2global[:3, 3].tolist(),
                    rotation=Quaternion(matrix=ego2global[:3, :3]).elements.tolist(),
                )
            )
            tables["sample"].append(
                dict(
                    token=token,
                    timestamp=timestamp,
                    scene_token=f"tok_{scene_name}",
                    prev=samples[i - 1] if i else "",
                    next=samples[i + 1] if i + 1 < len(samples) else "",
                )
            )
            tables["sample_data"].append(
                dict(
                    token=f"sd_{token}",
                    sample_token=token,
                    ego_pose_token=f"ego_{token}",
                    calibrated_sensor_token="cs_lidar",
                    timestamp=timestamp,
                    fileformat="pcd",
                    is_key_frame=True,
                    height=0,
                    width=0,
                    filename=f"samples/LIDAR_TOP/{token}.pcd.bin",
                    prev="",
                    next="",
                )
            )
            global2lidar = np.linalg.inv(ego2global @ lidar2ego)
            instances = []
            for obj in objects:
                w, length, h = SIZES[obj["name"]]
                # Objects move in the world; placed around the scene's first ego position.
                xy = ego_start + obj["offset"] + obj["velocity"] * t
                centre = np.array([*xy, 1.0 + h / 2])
                rotation = Quaternion(axis=[0, 0, 1], radians=obj["yaw"])
                speed = float(np.hypot(*obj["velocity"]))
                if obj["name"] in ("barrier", "traffic_cone"):
                    attrs = []
                elif obj["name"] == "pedestrian":
                    attrs = ["attr_pedestrian.moving" if speed > 0.2 else "attr_pedestrian.standing"]
                elif obj["name"] in ("bicycle", "motorcycle"):
                    attrs = ["attr_cycle.with_rider" if speed > 0.2 else "attr_cycle.without_rider"]
                else:
                    attrs = ["attr_vehicle.moving" if speed > 0.2 else "attr_vehicle.parked"]
                tables["sample_annotation"].append(
                    dict(
                        token=f"{obj['instance']}_a{i}",
                        sample_token=token,
                        instance_token=obj["instance"],
                        attribute_tokens=attrs,
                        visibility_token="4",
                        translation=centre.tolist(),
                        size=[w, length, h],
                        rotation=rotation.elements.tolist(),
                        num_lidar_pts=20,
                        num_radar_pts=0,
                        prev=f"{obj['instance']}_a{i - 1}" if i else "",
                        next=f"{obj['instance']}_a{i + 1}" if i + 1 < len(samples) else "",
                    )
                )
                # The info file's LiDAR-frame box, as mmdet3d's converter writes it (gravity centre).
                centre_lidar = global2lidar[:3, :3] @ centre + global2lidar[:3, 3]
                heading_lidar = global2lidar[:3, :3] @ rotation.rotation_matrix[:, 0]
                velocity_lidar = global2lidar[:3, :3] @ np.array([*obj["velocity"], 0.0])
                instances.append(
                    dict(
                        bbox_3d=[*centre_lidar, length, w, h, float(np.arctan2(heading_lidar[1], heading_lidar[0]))],
                        bbox_label_3d=CLASSES.index(obj["name"]),
                        velocity=velocity_lidar[:2].tolist(),
                        num_lidar_pts=20,
                        bbox_3d_isvalid=True,
                    )
                )
            infos.append(
                dict(
                    token=token,
                    lidar_points=dict(lidar_path=f"{token}.pcd.bin", lidar2ego=lidar2ego.tolist()),
                    ego2global=ego2global.tolist(),
                    instances=instances,
                )
            )
    os.makedirs(os.path.join(root, "v1.0-mini"), exist_ok=True)
    os.makedirs(os.path.join(root, "maps"), exist_ok=True)
    cv2.imwrite(os.path.join(root, "maps", "none.png"), np.zeros((8, 8), np.uint8))  # the devkit opens it
    for name, rows in tables.items():
        with open(os.path.join(root, "v1.0-mini", f"{name}.json"), "w") as f:
            json.dump(rows, f)
    path = os.path.join(root, "tiny_infos_val.pkl")
    with open(path, "wb") as f:
        pickle.dump(dict(metainfo=dict(classes=CLASSES, version="v1.0-mini"), data_list=infos), f)
    return path


def write_tiny_nuscenes(root: str, token: str = "tok0") -> str:
    """Writes one hand-made nuScenes-style sample for unit tests and returns its info file path.

    Layout under ``root``: ``samples/LIDAR_TOP/<token>.pcd.bin`` (N x 5), one sweep in
    ``sweeps/LIDAR_TOP``, six 90x160 camera images, a minimal map expansion
    (``maps/expansion/singapore-onenorth.json``: a 40 x 20 m road segment east of the origin, a
    walkway north of it, one lane divider) and Occ3D labels; identity lidar2ego and ego2global,
    one car box at (10, 0). Not a dataset: the synthetic generator makes those.
    """
    import json
    import os
    import pickle

    import cv2
    import numpy as np

    from perception_mtl.datasets.transforms.load_multi_view_images import NUSCENES_CAMERAS

    rng = np.random.default_rng(0)
    for sub in ["samples/LIDAR_TOP", "sweeps/LIDAR_TOP", "maps/expansion", f"gts/scene-0001/{token}"] + [
        f"samples/{c}" for c in NUSCENES_CAMERAS
    ]:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    points = np.concatenate([rng.uniform(-30, 30, (500, 3)), rng.uniform(0, 1, (500, 1)), np.zeros((500, 1))], 1)
    points.astype(np.float32).tofile(os.path.join(root, "samples/LIDAR_TOP", f"{token}.pcd.bin"))
    points[:100].astype(np.float32).tofile(os.path.join(root, "sweeps/LIDAR_TOP", f"{token}_sweep.pcd.bin"))
    eye = np.eye(4).tolist()
    images = {}
    for i, cam in enumerate(NUSCENES_CAMERAS):
        cv2.imwrite(os.path.join(root, f"samples/{cam}", f"{token}.jpg"), np.full((90, 160, 3), 40 * i, np.uint8))
        yaw = np.deg2rad(60 * i)
        cam2lidar = np.eye(4)
        # Camera axes (x right, y down, z forward) expressed in the LiDAR frame, looking along `yaw`.
        forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        cam2lidar[:3, :3] = np.stack([right, [0.0, 0.0, -1.0], forward], 1)
        images[cam] = dict(
            img_path=f"{token}.jpg",
            cam2img=[[80.0, 0.0, 80.0], [0.0, 80.0, 45.0], [0.0, 0.0, 1.0]],
            lidar2cam=np.linalg.inv(cam2lidar).tolist(),
            cam2ego=cam2lidar.tolist(),
            sample_data_token=f"{token}_{cam}",
            timestamp=1.0,
        )
    semantics = np.full((200, 200, 16), 17, np.uint8)
    semantics[122:128, 97:103, 2:6] = 1  # the car at (10, 0)
    ones = np.ones((200, 200, 16), np.uint8)
    np.savez_compressed(
        os.path.join(root, f"gts/scene-0001/{token}/labels.npz"), semantics=semantics, mask_lidar=ones, mask_camera=ones
    )
    nodes = {
        "road": [(0.0, -10.0), (40.0, -10.0), (40.0, 10.0), (0.0, 10.0)],
        "walk": [(0.0, 10.0), (40.0, 10.0), (40.0, 14.0), (0.0, 14.0)],
        "divider": [(0.0, 0.0), (40.0, 0.0)],
    }
    node_records, polygons, lines = [], [], []
    for name, coords in nodes.items():
        tokens = []
        for j, (x, y) in enumerate(coords):
            tokens.append(f"{name}_n{j}")
            node_records.append(dict(token=tokens[-1], x=x, y=y))
        if name == "divider":
            lines.append(dict(token=f"{name}_line", node_tokens=tokens))
        else:
            polygons.append(dict(token=f"{name}_poly", exterior_node_tokens=tokens, holes=[]))
    empty_layers = ["drivable_area", "road_block", "lane", "ped_crossing", "stop_line", "carpark_area"]
    expansion = {layer: [] for layer in empty_layers + ["road_divider", "traffic_light", "lane_connector"]}
    expansion.update(
        version="1.3",
        canvas_edge=[200.0, 200.0],
        polygon=polygons,
        line=lines,
        node=node_records,
        road_segment=[dict(token="road", polygon_token="road_poly", is_intersection=False, drivable_area_token="")],
        walkway=[dict(token="walk", polygon_token="walk_poly")],
        lane_divider=[dict(token="div", line_token="divider_line", lane_divider_segments=[])],
        arcline_path_3={},
        connectivity={},
    )
    with open(os.path.join(root, "maps/expansion/singapore-onenorth.json"), "w") as f:
        json.dump(expansion, f)
    sweep_code = np.eye(4)  # mmdet3d's [R^T | -t] encoding; identity = the sweep sensor is the key LiDAR
    info = dict(
        sample_idx=0,
        token=token,
        timestamp=1.0,
        ego2global=eye,
        map_location="singapore-onenorth",
        scene_token="scene-0001",
        occ_path=f"gts/scene-0001/{token}/labels.npz",
        lidar_points=dict(num_pts_feats=5, lidar_path=f"{token}.pcd.bin", lidar2ego=eye),
        lidar_sweeps=[
            dict(
                lidar_points=dict(
                    lidar_path=f"sweeps/LIDAR_TOP/{token}_sweep.pcd.bin", lidar2sensor=sweep_code.tolist()
                ),
                ego2global=eye,
                timestamp=0.95,
                sample_data_token=f"{token}_sweep",
            )
        ],
        images=images,
        instances=[
            dict(
                bbox_3d=[10.0, 0.0, 0.0, 4.5, 1.9, 1.6, 0.0],  # mmdet3d infos: z is the box centre
                bbox_label=0,
                bbox_label_3d=0,
                velocity=[1.0, 0.0],
                num_lidar_pts=5,
                num_radar_pts=0,
                bbox_3d_isvalid=True,
            )
        ],
    )
    metainfo = dict(categories={"car": 0}, dataset="nuscenes", version="v1.0-mini", info_version="1.1")
    path = os.path.join(root, "tiny_infos.pkl")
    with open(path, "wb") as f:
        pickle.dump(dict(metainfo=metainfo, data_list=[info]), f)
    return path
