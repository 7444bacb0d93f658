"""Tiny hand-made nuScenes-format data for unit tests (not datasets: the synthetic generator makes those).

Two writers share the parts below (schema tables, map expansion, Occ3D labels, info file):

- :func:`write_tiny_nuscenes`: one sample with every file the multi-task loaders read (points,
  a sweep, six images, map expansion, Occ3D labels) and its info file; no tables.
- :func:`write_tiny_nuscenes_db`: the v1.0-mini tables of two mini_val scenes, enough for
  nuscenes-devkit's ``DetectionEval``, and an info file converted independently of the metric.

The table names, categories, attributes, visibility levels and map layers come from
:mod:`perception_mtl.datasets.converters.nuscenes_schema`.
"""

from __future__ import annotations

import json
import os
import pickle

import cv2
import numpy as np
from pyquaternion import Quaternion

from perception_mtl.datasets.converters.nuscenes_schema import (
    ATTRIBUTES,
    CAMERA_CHANNELS,
    CATEGORIES,
    DETECTION_CLASS_OF_CATEGORY,
    MAP_LAYERS,
    TABLES,
    VISIBILITY,
)

# The database's detection classes, in its label order (that of the BEVFusion configs).
CLASSES = [
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
]
# The category each class's objects are annotated with: the first nuScenes category the devkit maps to it.
CATEGORY_OF_CLASS = {
    name: next(c for c, _ in CATEGORIES if DETECTION_CLASS_OF_CATEGORY.get(c) == name) for name in CLASSES
}
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
_STATIC = ("barrier", "traffic_cone")


# ----------------------------------------------------------------------------------- shared parts


def _pose(yaw: float, translation) -> np.ndarray:
    """(4, 4) transform: rotation about +z by ``yaw`` (rad), then ``translation``."""
    m = np.eye(4)
    m[:3, :3] = Quaternion(axis=[0, 0, 1], radians=yaw).rotation_matrix
    m[:3, 3] = translation
    return m


def _vocabulary_tables() -> dict[str, list[dict]]:
    """The category (one per class of :data:`CLASSES`), attribute and visibility tables."""
    return dict(
        category=[dict(token=f"cat_{name}", name=CATEGORY_OF_CLASS[name], description="") for name in CLASSES],
        attribute=[dict(token=f"attr_{name}", name=name, description=d) for name, d in ATTRIBUTES],
        visibility=[dict(token=token, level=level, description=d) for token, level, d in VISIBILITY],
    )


def _write_tables(root: str, version: str, tables: dict[str, list[dict]]) -> None:
    """Writes every table of the schema under ``root/<version>/``; those not in ``tables`` are empty."""
    os.makedirs(os.path.join(root, version), exist_ok=True)
    for name in TABLES:
        with open(os.path.join(root, version, f"{name}.json"), "w") as f:
            json.dump(tables.get(name, []), f)


def _write_map_expansion(root: str, location: str, layers: dict[str, list[dict]], nodes: dict) -> None:
    """Writes ``maps/expansion/<location>.json`` (schema v1.3, 200 m canvas).

    Args:
        root: dataset root.
        location: map name (a log's location).
        layers: records of the semantic layers (:data:`MAP_LAYERS`) that are not empty.
        nodes: name -> (polygon: bool, [(x, y), ...] in metres, global frame); each becomes a
            polygon (``<name>_poly``) or a line (``<name>_line``) with nodes ``<name>_n<i>``.
    """
    node_records, polygons, lines = [], [], []
    for name, (is_polygon, coords) in nodes.items():
        tokens = [f"{name}_n{j}" for j in range(len(coords))]
        node_records += [dict(token=t, x=x, y=y) for t, (x, y) in zip(tokens, coords)]
        if is_polygon:
            polygons.append(dict(token=f"{name}_poly", exterior_node_tokens=tokens, holes=[]))
        else:
            lines.append(dict(token=f"{name}_line", node_tokens=tokens))
    expansion = {layer: layers.get(layer, []) for layer in MAP_LAYERS}
    expansion.update(
        version="1.3",
        canvas_edge=[200.0, 200.0],
        polygon=polygons,
        line=lines,
        node=node_records,
        arcline_path_3={},
        connectivity={},
    )
    os.makedirs(os.path.join(root, "maps", "expansion"), exist_ok=True)
    with open(os.path.join(root, "maps", "expansion", f"{location}.json"), "w") as f:
        json.dump(expansion, f)


def _write_occ_labels(root: str, scene: str, token: str, semantics: np.ndarray) -> str:
    """Writes Occ3D labels ``gts/<scene>/<token>/labels.npz`` (all-visible masks); returns the relative path."""
    rel = f"gts/{scene}/{token}/labels.npz"
    os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
    ones = np.ones(semantics.shape, np.uint8)
    np.savez_compressed(os.path.join(root, rel), semantics=semantics, mask_lidar=ones, mask_camera=ones)
    return rel


def _write_info_file(path: str, metainfo: dict, data_list: list[dict]) -> str:
    """Writes an mmdet3d v2 info file (``{'metainfo', 'data_list'}``); returns its path."""
    with open(path, "wb") as f:
        pickle.dump(dict(metainfo=metainfo, data_list=data_list), f)
    return path


# ------------------------------------------------------------------------------------- the writers


def write_tiny_nuscenes(root: str, token: str = "tok0") -> str:
    """Writes one hand-made nuScenes-style sample for unit tests and returns its info file path.

    Layout under ``root``: ``samples/LIDAR_TOP/<token>.pcd.bin`` (N x 5), one sweep in
    ``sweeps/LIDAR_TOP``, six 90x160 camera images, a minimal map expansion
    (``maps/expansion/singapore-onenorth.json``: a 40 x 20 m road segment east of the origin, a
    walkway north of it, one lane divider) and Occ3D labels; identity lidar2ego and ego2global,
    one car box at (10, 0).
    """
    rng = np.random.default_rng(0)
    for sub in ["samples/LIDAR_TOP", "sweeps/LIDAR_TOP"] + [f"samples/{c}" for c in CAMERA_CHANNELS]:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    points = np.concatenate([rng.uniform(-30, 30, (500, 3)), rng.uniform(0, 1, (500, 1)), np.zeros((500, 1))], 1)
    points.astype(np.float32).tofile(os.path.join(root, "samples/LIDAR_TOP", f"{token}.pcd.bin"))
    points[:100].astype(np.float32).tofile(os.path.join(root, "sweeps/LIDAR_TOP", f"{token}_sweep.pcd.bin"))
    eye = np.eye(4).tolist()
    images = {}
    for i, cam in enumerate(CAMERA_CHANNELS):
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
    occ_path = _write_occ_labels(root, "scene-0001", token, semantics)
    _write_map_expansion(
        root,
        "singapore-onenorth",
        layers=dict(
            road_segment=[dict(token="road", polygon_token="road_poly", is_intersection=False, drivable_area_token="")],
            walkway=[dict(token="walk", polygon_token="walk_poly")],
            lane_divider=[dict(token="div", line_token="divider_line", lane_divider_segments=[])],
        ),
        nodes=dict(
            road=(True, [(0.0, -10.0), (40.0, -10.0), (40.0, 10.0), (0.0, 10.0)]),
            walk=(True, [(0.0, 10.0), (40.0, 10.0), (40.0, 14.0), (0.0, 14.0)]),
            divider=(False, [(0.0, 0.0), (40.0, 0.0)]),
        ),
    )
    sweep_code = np.eye(4)  # [R^T | -t] (no poses: read so); identity = the sweep sensor is the key LiDAR
    info = dict(
        sample_idx=0,
        token=token,
        timestamp=1.0,
        ego2global=eye,
        map_location="singapore-onenorth",
        scene_token="scene-0001",
        occ_path=occ_path,
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
    return _write_info_file(os.path.join(root, "tiny_infos.pkl"), metainfo, [info])


def _attribute_tokens(name: str, speed: float) -> list[str]:
    """The annotation's attribute tokens: moving or not, by class."""
    if name in _STATIC:
        return []
    if name == "pedestrian":
        return ["attr_pedestrian.moving" if speed > 0.2 else "attr_pedestrian.standing"]
    if name in ("bicycle", "motorcycle"):
        return ["attr_cycle.with_rider" if speed > 0.2 else "attr_cycle.without_rider"]
    return ["attr_vehicle.moving" if speed > 0.2 else "attr_vehicle.parked"]


def write_tiny_nuscenes_db(root: str, seed: int = 0) -> str:
    """Writes a tiny nuScenes database and its info file; returns the info file path.

    Two mini_val scenes (scene-0103, scene-0916) of three key frames 0.5 s apart, moving ego poses,
    a LiDAR mounted with a -90 degree yaw (as in nuScenes) and two objects of every class of
    :data:`CLASSES` moving at constant velocity (barriers and cones static). Writes the tables
    under ``root/v1.0-mini`` and ``root/tiny_infos_val.pkl``, whose LiDAR-frame instances
    (gravity-centre z, velocity) are converted from the global annotations independently of the
    metric under test.
    """
    rng = np.random.default_rng(seed)
    tables: dict[str, list] = {name: [] for name in TABLES}
    tables.update(_vocabulary_tables())
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
                radius = rng.uniform(8, 25 if name in _STATIC else 35)
                angle = rng.uniform(-np.pi, np.pi)
                objects.append(
                    dict(
                        name=name,
                        instance=f"inst_{scene_name}_{len(objects)}",
                        offset=np.array([radius * np.cos(angle), radius * np.sin(angle)]),
                        yaw=rng.uniform(-np.pi, np.pi),
                        velocity=np.zeros(2) if name in _STATIC else rng.uniform(-4, 4, 2),
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
                tables["sample_annotation"].append(
                    dict(
                        token=f"{obj['instance']}_a{i}",
                        sample_token=token,
                        instance_token=obj["instance"],
                        attribute_tokens=_attribute_tokens(obj["name"], float(np.hypot(*obj["velocity"]))),
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
    _write_tables(root, "v1.0-mini", tables)
    os.makedirs(os.path.join(root, "maps"), exist_ok=True)
    cv2.imwrite(os.path.join(root, "maps", "none.png"), np.zeros((8, 8), np.uint8))  # the devkit opens it
    metainfo = dict(classes=CLASSES, version="v1.0-mini")
    return _write_info_file(os.path.join(root, "tiny_infos_val.pkl"), metainfo, infos)
