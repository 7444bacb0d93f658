"""Test helpers: the registry-wide test's cases (tests/test_registered_modules.py) and ONNX export.

Each area of the package lists its registered modules in a ``tests/<area>/registry_cases.py``
file that defines ``CASES: dict[str, RegistryCase]`` (registered name -> how to build and check
it). The registry-wide test collects every such file and fails when a registered module has no case.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from mmengine.registry import Registry


def export_onnx(module: torch.nn.Module, args: tuple, **export_kwargs):
    """Exports ``module(*args)`` (TorchScript exporter, opset 17, tracer warnings silenced) and loads it
    in onnxruntime on the CPU. Returns ``(session, op_types)``, the set of the graph's node types, so
    tests can assert that no data-dependent-shape op (NonZero from boolean-mask indexing) got in."""
    import onnx
    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17, **export_kwargs)
    op_types = {node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node}
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return session, op_types


@dataclass
class RegistryCase:
    """How to check one registered module: build ``cfg`` from ``registry``, then ``check(module)``.

    ``cfg`` may be a function returning the config, for configs that need files made at test time.
    """

    registry: Registry
    cfg: dict | Callable[[], dict]
    check: Callable

    def build(self):
        return self.registry.build(self.cfg() if callable(self.cfg) else self.cfg)


def check_model_trains(model: torch.nn.Module, batch: dict, loss_key: str = "loss") -> dict:
    """Runs ``mode='loss'`` on a batch, backpropagates, and asserts every trainable parameter got
    a non-zero gradient. Returns the loss dict."""
    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode="loss")
    total = sum(v.sum() for k, v in losses.items() if loss_key in k)
    assert torch.isfinite(total), f"non-finite loss: {losses}"
    total.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert not missing, f"parameters without gradient: {missing}"
    return losses


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
