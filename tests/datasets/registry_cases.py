import copy
import tempfile

import numpy as np
import torch
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, TRANSFORMS
from perception_mtl.structures import SensorCalibration
from perception_mtl.testing import RegistryCase
from perception_mtl.testing.tiny_nuscenes import write_tiny_nuscenes

_TINY: dict = {}


def _tiny() -> tuple[str, str]:
    """(root, info file) of the hand-made nuScenes sample, written once per test session."""
    if not _TINY:
        root = tempfile.mkdtemp(prefix="tiny_nuscenes_")
        _TINY.update(root=root, info=write_tiny_nuscenes(root))
    return _TINY["root"], _TINY["info"]


def _pipeline(root):
    return [
        dict(type="LoadLidarPointsWithSweeps", sweeps_num=1, test_mode=True),
        dict(type="LoadMultiViewImages"),
        dict(type="mmdet3d.LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
        dict(type="MultiViewImageAug", final_size=(64, 128), resize_lim=(0.8, 0.8), rot_lim=(-5, 5)),
        dict(type="BEVAug", is_train=False),  # deterministic: later checks read fixed cells
        dict(type="LoadBEVMapSegmentation", data_root=root),
        dict(type="LoadOccupancy"),
        dict(type="PackMTLInputs"),
    ]


def _results_before(name: str) -> dict:
    """The tiny sample after the standard pipeline up to (not including) transform ``name``."""
    init_default_scope("perception_mtl")
    root, info = _tiny()
    dataset = DATASETS.build(dict(type="NuScenesMTLDataset", data_root=root, ann_file=info, filter_empty_gt=False))
    results = copy.deepcopy(dataset.get_data_info(0))
    results.update(box_type_3d=dataset.box_type_3d, box_mode_3d=dataset.box_mode_3d)
    for step in _pipeline(root):
        if step["type"] == name:
            return results
        results = TRANSFORMS.build(step)(results)
    raise KeyError(name)


def check_nuscenes_dataset(dataset):
    item = dataset[0]
    assert isinstance(item["inputs"]["calib"], SensorCalibration)
    assert item["data_samples"].gt_bev_seg.shape == (6, 200, 200)


def check_lidar_loading(transform):
    assert transform(_results_before("LoadLidarPointsWithSweeps"))["points"].shape == (600, 5)


def check_image_loading(transform):
    results = transform(_results_before("LoadMultiViewImages"))
    assert len(results["img"]) == 6 and results["cam2img"].shape == (6, 3, 3)


def check_image_aug(transform):
    results = transform(_results_before("MultiViewImageAug"))
    assert results["img"][0].shape == (32, 64, 3) and results["img_aug"][0, 0, 0] == np.float32(0.4)


def check_bev_aug(transform):
    assert transform(_results_before("BEVAug"))["gt_bboxes_3d"].tensor[0, 0].item() == -10.0


def check_map(transform):
    transform.data_root = _tiny()[0]
    seg = transform(_results_before("LoadBEVMapSegmentation"))["gt_bev_seg"]
    assert seg.shape == (1, 200, 200) and seg[0, 120, 100] == 1


def check_occupancy(transform):
    assert transform(_results_before("LoadOccupancy"))["gt_occ"]["semantics"].shape == (200, 200, 16)


def check_pack(transform):
    packed = transform(_results_before("PackMTLInputs"))
    assert torch.is_tensor(packed["inputs"]["img"]) and packed["data_samples"].gt_occ["semantics"].dtype == torch.uint8


def _nuscenes_cfg():
    root, info = _tiny()
    return dict(
        type="NuScenesMTLDataset", data_root=root, ann_file=info, filter_empty_gt=False, pipeline=_pipeline(root)
    )


CASES = {
    "NuScenesMTLDataset": RegistryCase(DATASETS, _nuscenes_cfg, check_nuscenes_dataset),
    "LoadLidarPointsWithSweeps": RegistryCase(
        TRANSFORMS, dict(type="LoadLidarPointsWithSweeps", sweeps_num=1), check_lidar_loading
    ),
    "LoadMultiViewImages": RegistryCase(TRANSFORMS, dict(type="LoadMultiViewImages"), check_image_loading),
    "MultiViewImageAug": RegistryCase(
        TRANSFORMS,
        dict(type="MultiViewImageAug", final_size=(32, 64), resize_lim=(0.4, 0.4), is_train=False),
        check_image_aug,
    ),
    "BEVAug": RegistryCase(
        TRANSFORMS,
        dict(type="BEVAug", flip_x_prob=1.0, flip_y_prob=0.0, rot_range=(0, 0), scale_range=(1, 1)),
        check_bev_aug,
    ),
    "LoadBEVMapSegmentation": RegistryCase(
        TRANSFORMS, dict(type="LoadBEVMapSegmentation", data_root="", classes=("drivable_area",)), check_map
    ),
    "LoadOccupancy": RegistryCase(TRANSFORMS, dict(type="LoadOccupancy"), check_occupancy),
    "PackMTLInputs": RegistryCase(TRANSFORMS, dict(type="PackMTLInputs"), check_pack),
}


def check_two_modality_bev_dataset(dataset):
    item = dataset[0]
    assert item["inputs"]["camera"].shape == (3, 16, 16) and item["inputs"]["lidar"].shape == (2, 16, 16)
    assert item["data_samples"].gt_bev_seg.shape == (2, 16, 16) and item["data_samples"].gt_centers.shape[1] == 2


CASES["TwoModalityBEVDataset"] = RegistryCase(
    DATASETS, dict(type="TwoModalityBEVDataset", num_samples=2, grid_size=16), check_two_modality_bev_dataset
)


def check_synthetic_dense_scenes(dataset):
    item = dataset[1]
    sample = item["data_samples"]
    assert item["inputs"].shape == (3, 24, 24) and item["inputs"].dtype == torch.uint8
    assert sample.gt_sem_seg.shape == sample.gt_depth.shape == sample.gt_edge.shape == (24, 24)
    assert torch.equal(dataset[1]["inputs"], item["inputs"])  # deterministic


CASES["SyntheticDenseScenes"] = RegistryCase(
    DATASETS, dict(type="SyntheticDenseScenes", num_samples=2, img_size=24), check_synthetic_dense_scenes
)


def _gt_paste_cfg():
    """A hand-made one-object database (a car at (10, 0) with 20 points) in mmdet3d's dbinfos format."""
    import os
    import os.path as osp

    import mmengine
    import numpy as np

    root = tempfile.mkdtemp(prefix="tiny_gt_database_")
    os.makedirs(osp.join(root, "db"))
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-0.8, 0.8, (20, 2)), rng.uniform(0.1, 1.5, (20, 1)), np.zeros((20, 2))], 1)
    pts.astype(np.float32).tofile(osp.join(root, "db", "car_0.bin"))
    box = np.array([10.0, 0.0, -1.8, 4.5, 1.9, 1.6, 0.0, 0.0, 0.0], np.float32)
    entry = dict(name="car", path="db/car_0.bin", box3d_lidar=box, num_points_in_gt=20, difficulty=0, group_id=0)
    mmengine.dump(dict(car=[entry], pedestrian=[]), osp.join(root, "dbinfos.pkl"))
    return dict(
        type="GTPasteSampler",
        data_root=root,
        info_path=osp.join(root, "dbinfos.pkl"),
        rate=1.0,
        prepare=dict(filter_by_min_points=dict(car=1)),
        classes=["car", "truck", "construction_vehicle", "bus", "trailer"]
        + ["barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone"],
        sample_groups=dict(car=2, pedestrian=2),  # no pedestrian in the database: skipped, not an error
        points_loader=dict(type="mmdet3d.LoadPointsFromFile", coord_type="LIDAR", load_dim=5, use_dim=5),
    )


def check_gt_paste_sampler(sampler):
    import numpy as np

    # into an empty scene: the database's one car, at its recorded place, with its 20 points
    out = sampler.sample_all(np.zeros((0, 9), np.float32), np.zeros((0,), np.int64))
    assert out["gt_labels_3d"].tolist() == [0] and len(out["points"]) == 20
    assert np.allclose(out["gt_bboxes_3d"][0, :2], [10.0, 0.0], atol=0.5)
    # into the scene that already holds that car: the coincident re-draw is dropped
    assert sampler.sample_all(out["gt_bboxes_3d"], out["gt_labels_3d"]) is None


CASES["GTPasteSampler"] = RegistryCase(TRANSFORMS, _gt_paste_cfg, check_gt_paste_sampler)
