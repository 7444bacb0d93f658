"""The object database written with the synthetic data, and mmdet3d's ObjectSample pasting from it."""

import os.path as osp

import mmengine
import numpy as np
import pytest
import torch
from mmcv.ops import points_in_boxes_cpu
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, TRANSFORMS

CLASSES = ["car", "truck", "construction_vehicle", "bus", "trailer"]
CLASSES += ["barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone"]


def _db(root):
    return mmengine.load(osp.join(root, "nuscenes_dbinfos_train.pkl"))


def _sampler_cfg(root, **overrides) -> dict:
    """GTPasteSampler asking for 20 objects of every class from the database under ``root``."""
    cfg = dict(
        type="GTPasteSampler",
        data_root=root,
        info_path=osp.join(root, "nuscenes_dbinfos_train.pkl"),
        rate=1.0,
        prepare=dict(filter_by_difficulty=[-1], filter_by_min_points={n: 1 for n in CLASSES}),
        classes=CLASSES,
        sample_groups={n: 20 for n in CLASSES},
        points_loader=dict(type="mmdet3d.LoadPointsFromFile", coord_type="LIDAR", load_dim=5, use_dim=[0, 1, 2, 3, 4]),
    )
    return {**cfg, **overrides}


def test_database_holds_the_training_objects_points(synthetic_root):
    db = _db(synthetic_root)
    train = mmengine.load(osp.join(synthetic_root, "nuscenes_infos_train.pkl"))["data_list"]
    val = mmengine.load(osp.join(synthetic_root, "nuscenes_infos_val.pkl"))["data_list"]
    train_ids = {info["token"] for info in train}
    val_ids = {info["token"] for info in val}
    entries = [e for v in db.values() for e in v]
    assert entries and {e["name"] for e in entries} <= set(CLASSES)
    # only training samples feed the database (pasting validation objects would leak them)
    assert {e["token"] for e in entries} <= train_ids and not ({e["token"] for e in entries} & val_ids)
    for e in entries[:50]:
        pts = np.fromfile(osp.join(synthetic_root, e["path"]), dtype=np.float32).reshape(-1, 5)
        assert len(pts) == e["num_points_in_gt"] > 0
        # stored relative to the box's bottom centre: back in place they lie inside the box
        box = torch.from_numpy(np.asarray(e["box3d_lidar"][:7], np.float32))
        xyz = torch.from_numpy(pts[:, :3] + np.asarray(e["box3d_lidar"][:3], np.float32))
        assert points_in_boxes_cpu(xyz[None], box[None, None])[0].all()


def test_object_sample_pastes_rare_classes_without_collisions(synthetic_root):
    init_default_scope("perception_mtl")
    sampler = _sampler_cfg(synthetic_root, key_frame_lag=(4, 1e-6))
    load = [
        dict(type="LoadLidarPointsWithSweeps", sweeps_num=3, test_mode=True),
        dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    ]
    ds = DATASETS.build(
        dict(type="NuScenesMTLDataset", data_root=synthetic_root, ann_file="nuscenes_infos_train.pkl", pipeline=load)
    )
    paste = TRANSFORMS.build(dict(type="mmdet3d.ObjectSample", db_sampler=sampler))
    np.random.seed(0)
    before = ds.pipeline(ds.get_data_info(0))
    n_before, pts_before = len(before["gt_labels_3d"]), len(before["points"])
    scene_points = before["points"].tensor.clone()
    after = paste(before)
    boxes, points = after["gt_bboxes_3d"], after["points"]
    assert len(after["gt_labels_3d"]) > n_before, "nothing pasted although every class asked for 20"
    assert points.shape[1] == 5 and len(points) != pts_before
    # no two boxes overlap in BEV after pasting (the sampler's collision test)
    bev = boxes.bev
    from mmcv.ops import box_iou_rotated

    iou = box_iou_rotated(bev, bev)
    iou.fill_diagonal_(0)
    assert float(iou.max()) < 1e-3
    # every pasted box carries its points
    inside = points_in_boxes_cpu(points.tensor[None, :, :3].float(), boxes.tensor[None, n_before:, :7].float())[0]
    assert (inside.sum(0) > 0).all()
    # pasted points are never key-frame points (lag 0), so camera depth supervision skips them;
    # the scene's own key-frame points are untouched
    lag = points.tensor[:, 4]
    pasted = inside.any(1)
    assert (lag[pasted] > 0).all() and (lag[pasted] <= 1e-6).any()
    pasted_boxes = boxes.tensor[None, n_before:, :7].float()
    scene_kept = ~points_in_boxes_cpu(scene_points[None, :, :3].float(), pasted_boxes)[0].any(1)
    assert int((lag[~pasted] == 0).sum()) == int((scene_points[scene_kept, 4] == 0).sum()) > 0


def test_key_frame_lag_errors_name_the_key(synthetic_root):
    init_default_scope("perception_mtl")
    cfg = _sampler_cfg(synthetic_root)
    with pytest.raises(ValueError, match="lag > 0"):
        TRANSFORMS.build({**cfg, "key_frame_lag": (4, 0.0)})
    sampler = TRANSFORMS.build({**cfg, "key_frame_lag": (7, 1e-6)})
    with pytest.raises(ValueError, match="key_frame_lag column 7"):
        sampler.sample_all(np.zeros((0, 9), np.float32), np.zeros(0, np.int64))
