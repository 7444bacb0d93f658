"""tools/visualize.py on each model family (tiny data, randomly initialised models): it writes the PNGs,
and what they show is where the geometry says it must be."""

from __future__ import annotations

import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception_mtl.datasets.converters.nuscenes_schema import CAMERA_CHANNELS
from perception_mtl.testing import config_path, random_checkpoint
from perception_mtl.testing.camera_calibration import tiny_cvgl_root
from perception_mtl.testing.camera_calibration import tiny_model_cfg as tiny_ugcl_cfg
from perception_mtl.testing.tiny_nuscenes import write_tiny_nuscenes
from perception_mtl.visualization import panel_origin
from perception_mtl.visualization.face_visualizer import BOX_COLOR, LANDMARK_COLOR
from perception_mtl.visualization.panel_grid import BACKGROUND, GT_COLOR, MAP_COLORS, OCC_COLORS, PRED_COLOR
from perception_mtl.visualization.visualize import main as visualize

CANVAS = 400  # BEV panel side (DrivingVisualizer default)
RES = 102.4 / CANVAS  # metres per BEV pixel over the demo's bev_range [-51.2, 51.2]


def _write_config(path: str, base: str, **body) -> str:
    """A leaf config inheriting ``base`` and overriding ``body`` (written as Python literals)."""
    lines = [f"_base_ = [{base!r}]"] + [f"{k} = {v!r}" for k, v in body.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _bev_pixel(x: float, y: float) -> tuple[int, int]:
    """(row, column) of the BEV pixel holding LiDAR point (x, y): x up, y left, 0.256 m pixels."""
    return int(np.floor((51.2 - x) / RES)), int(np.floor((51.2 - y) / RES))


def _panel(picture: np.ndarray, index: int, columns: int, shape: tuple[int, int]) -> np.ndarray:
    row, col = panel_origin(index, columns, shape)
    return picture[row : row + shape[0], col : col + shape[1]]


def _first_item(config: str, index: int = 0) -> dict:
    """Item ``index`` of the config's validation dataset, as the tool loads it."""
    from mmengine.registry import DATASETS

    init_default_scope("perception_mtl")
    return DATASETS.build(Config.fromfile(config).val_dataloader.dataset)[index]


def _near(panel: np.ndarray, row: float, col: float, color, radius: int = 1) -> bool:
    r, c = int(round(row)), int(round(col))
    window = panel[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
    return bool((window == np.asarray(color, np.uint8)).all(-1).any())


# ---------------------------------------------------------------------------------------- driving


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory):
    """The M3Net demo model (det + map + occ, random weights) on the tiny hand-made nuScenes sample: one car
    box at (10, 0) (bottom z -0.8, 1.6 m tall), a road x in [0, 40], |y| < 10, a walkway y in [10, 14], a
    divider along y = 0, occupancy car voxels around (10, 0); six 90x160 cameras (fx = fy = 80, centre
    (80, 45)), camera i looking along yaw 60 i degrees."""
    tmp = tmp_path_factory.mktemp("vis_driving")
    root = str(tmp / "data")
    info = write_tiny_nuscenes(root)
    test_pipeline = [
        dict(type="LoadLidarPointsWithSweeps", load_dim=5, use_dim=(0, 1, 2, 3), sweeps_num=1, test_mode=True),
        dict(type="LoadMultiViewImages"),
        # Resize by 0.8 to 72 x 128, then the bottom 60 rows: pixel (u, v) -> (0.8 u, 0.8 v - 12).
        dict(type="MultiViewImageAug", final_size=(60, 128), resize_lim=(0.8, 0.8), is_train=False),
        dict(type="BEVAug", is_train=False),
        dict(type="LoadBEVMapSegmentation", data_root=root),
        dict(type="LoadOccupancy"),
        dict(type="PackMTLInputs", keys=("points", "img")),
    ]
    loader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=root, ann_file=info))
    loader["dataset"]["pipeline"] = test_pipeline
    config = _write_config(
        str(tmp / "m3net_tiny.py"),
        str(config_path("m3net_nuscenes_demo.py")),
        val_dataloader=loader,
        test_dataloader=loader,
    )
    checkpoint = str(tmp / "random.pth")
    random_checkpoint(config, checkpoint)
    out = str(tmp / "vis")
    # --score-thr 1.01: random predicted boxes stay hidden (drawing them is tested with known boxes below).
    written = visualize([config, checkpoint, "--out", out, "--samples", "2", "--scale", "2", "--score-thr", "1.01"])
    return written, out


def test_driving_writes_bev_and_camera_pictures(driving_run):
    written, out = driving_run
    # The tiny set has one sample: --samples 2 draws what there is.
    assert sorted(osp.basename(p) for p in written) == ["0000_bev.png", "0000_cameras.png"]
    bev = cv2.imread(osp.join(out, "0000_bev.png"))
    # Five BEV panels (points, map GT, map pred, occ GT, occ pred) in rows of three.
    assert bev.shape[:2] == (panel_origin(3, 3, (CANVAS, CANVAS))[0] + CANVAS, 3 * CANVAS)


def test_bev_gt_box_centre_at_its_pixel(driving_run):
    bev = cv2.imread(osp.join(driving_run[1], "0000_bev.png"))
    points = _panel(bev, 0, 3, (CANVAS, CANVAS))
    row, col = _bev_pixel(10.0, 0.0)
    assert _near(points, row, col, GT_COLOR)
    far_row, far_col = _bev_pixel(-10.0, 0.0)  # nothing there
    assert not _near(points, far_row, far_col, GT_COLOR, radius=4)


def test_bev_map_panel_matches_the_gt_raster(driving_run):
    bev = cv2.imread(osp.join(driving_run[1], "0000_bev.png"))
    panel = _panel(bev, 1, 3, (CANVAS, CANVAS))
    # Known geometry of the tiny map: drivable area (road) and walkway.
    assert (panel[_bev_pixel(20.0, 5.0)] == MAP_COLORS[0]).all()
    assert (panel[_bev_pixel(20.0, 12.0)] == MAP_COLORS[2]).all()
    assert (panel[_bev_pixel(20.0, 0.1)] == MAP_COLORS[5]).all()  # the divider, drawn on top
    assert (panel[_bev_pixel(-20.0, 0.0)] == BACKGROUND).all()
    # Every pixel: the colour of the last class set in the 0.5 m cell under its centre, else background.
    raster = _first_item(osp.join(osp.dirname(driving_run[1]), "m3net_tiny.py"))["data_samples"].gt_bev_seg.numpy()
    centres = (np.arange(CANVAS) + 0.5) * RES
    i = np.floor((51.2 - centres + 50.0) / 0.5).astype(int)  # x of each pixel row -> map row
    j = np.floor((51.2 - centres + 50.0) / 0.5).astype(int)  # y of each pixel column -> map column
    inside = (i >= 0) & (i < 200)
    expected = np.tile(np.asarray(BACKGROUND, np.uint8), (CANVAS, CANVAS, 1))
    for k in range(raster.shape[0]):
        cells = np.zeros((CANVAS, CANVAS), bool)
        cells[np.ix_(inside, inside)] = raster[k][np.ix_(i[inside], j[inside])] > 0
        expected[cells] = MAP_COLORS[k]
    assert (panel == expected).all(-1).mean() == 1.0


def test_bev_occupancy_slice_shows_the_car_voxels(driving_run):
    bev = cv2.imread(osp.join(driving_run[1], "0000_bev.png"))
    panel = _panel(bev, 3, 3, (CANVAS, CANVAS))  # occ GT
    assert (panel[_bev_pixel(10.0, 0.0)] == OCC_COLORS[1]).all()
    assert (panel[_bev_pixel(20.0, 0.0)] == BACKGROUND).all()  # free
    car = (panel == np.asarray(OCC_COLORS[1], np.uint8)).all(-1)
    rows, cols = np.nonzero(car)  # 6 x 6 voxels of 0.4 m: x in [8.8, 11.2], y in [-1.2, 1.2]
    assert 51.2 - (rows.max() + 0.5) * RES >= 8.8 - RES and 51.2 - (rows.min() + 0.5) * RES <= 11.2 + RES
    assert abs(51.2 - (cols.mean() + 0.5) * RES) < 0.3


def test_camera_gt_box_centre_where_it_projects(driving_run):
    cams = cv2.imread(osp.join(driving_run[1], "0000_cameras.png"))
    shape = (2 * 60, 2 * 128)
    front = CAMERA_CHANNELS.index(CAMERA_CHANNELS[0])  # camera 0 looks along +x
    panel = _panel(cams, front, 3, shape)
    # Gravity centre (10, 0, 0): straight ahead on the optical axis -> pixel (80, 45) of the 90x160 render,
    # (64, 24) after the resize and crop, drawn in the 2x2 block from (128, 48).
    assert _near(panel, 2 * 24 + 0.5, 2 * 64 + 0.5, GT_COLOR)
    assert not _near(panel, 2 * 36 + 0.5, 2 * 64 + 0.5, GT_COLOR, radius=2)  # where it would be without the crop
    back = _panel(cams, 3, 3, shape)  # camera 3 looks along -x: the box is behind it
    assert not (back == np.asarray(GT_COLOR, np.uint8)).all(-1).any()


def test_predicted_boxes_drawn_in_their_colour():
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    from mmengine.structures import InstanceData

    from perception_mtl.visualization import DrivingVisualizer

    sample = Det3DDataSample()
    pred = InstanceData()
    pred.bboxes_3d = LiDARInstance3DBoxes(torch.tensor([[0.0, 20.0, -1.0, 4.0, 2.0, 1.5, 0.3]]))
    pred.scores_3d = torch.tensor([0.9])
    pred.labels_3d = torch.tensor([0])
    sample.pred_instances_3d = pred
    pictures = DrivingVisualizer().draw(dict(points=torch.zeros(0, 4)), sample, "test")
    panel = _panel(pictures["bev"], 0, 3, (CANVAS, CANVAS))
    assert _near(panel, *_bev_pixel(0.0, 20.0), PRED_COLOR)
    assert not (panel == np.asarray(GT_COLOR, np.uint8)).all(-1).any()


def test_ground_truth_only_without_checkpoint(driving_run, tmp_path, capsys):
    config = osp.join(osp.dirname(driving_run[1]), "m3net_tiny.py")
    written = visualize([config, "--out", str(tmp_path), "--samples", "1"])
    assert "ground truth only (no checkpoint)" in capsys.readouterr().out
    bev = cv2.imread(written[0])
    # Points, map GT, occ GT: no prediction panels.
    assert bev.shape[:2] == (panel_origin(0, 3, (CANVAS, CANVAS))[0] + CANVAS, 3 * CANVAS)


def test_missing_split_or_checkpoint_is_named(driving_run, tmp_path):
    from perception_mtl.visualization.visualize import build_dataset

    config = osp.join(osp.dirname(driving_run[1]), "m3net_tiny.py")
    cfg = Config.fromfile(config)
    cfg.test_dataloader = None
    with pytest.raises(KeyError, match=r"m3net_tiny.py has no test_dataloader.dataset .*\['train', 'val'\]"):
        build_dataset(cfg, "test")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        visualize([config, str(tmp_path / "none.pth"), "--out", str(tmp_path)])


# ------------------------------------------------------------------------------------------ faces


@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    from perception_mtl.synthetic.faces import SyntheticFaceWriter

    tmp = tmp_path_factory.mktemp("vis_faces")
    root = str(tmp / "faces")
    SyntheticFaceWriter(root, num_train=0, num_val=2, num_pose_eval=0, img_size=96, max_faces=2, seed=1).run()
    loader = dict(dataset=dict(data_root=root + "/"))
    config = _write_config(
        str(tmp / "mos_tiny.py"), str(config_path("mos_face_pose_demo.py")), val_dataloader=loader, custom_hooks=[]
    )
    checkpoint = str(tmp / "random.pth")
    random_checkpoint(config, checkpoint)
    out = str(tmp / "vis")
    written = visualize([config, checkpoint, "--out", out, "--samples", "2", "--scale", "2"])
    return written, out, config


def test_faces_landmarks_and_boxes_at_their_pixels(face_run):
    written, out, config = face_run
    assert sorted(osp.basename(p) for p in written) == ["0000_faces.png", "0001_faces.png"]
    for index in range(2):
        gt = _first_item(config, index)["data_samples"].gt_instances
        picture = cv2.imread(osp.join(out, f"{index:04d}_faces.png"))
        # GT panel beside the prediction panel, each 192 px input x 2.
        assert picture.shape[1] == 2 * 384
        panel = _panel(picture, 0, 2, (384, 384))
        for face, box in enumerate(gt.bboxes.tolist()):
            assert _near(panel, 2 * box[1], 2 * box[0], BOX_COLOR)
            if gt.landmarks_valid[face]:
                for x, y in gt.landmarks[face].tolist():
                    assert _near(panel, 2 * y, 2 * x, LANDMARK_COLOR, radius=0)


def test_face_pose_axes_follow_the_convention():
    from perception_mtl.testing.faces import face_sample
    from perception_mtl.visualization import FaceVisualizer
    from perception_mtl.visualization.face_visualizer import AXIS_COLORS

    sample = face_sample([[40, 40, 120, 120]], img_size=160)
    sample.gt_instances.poses = torch.tensor([[40.0, 0.0, 0.0]])  # yaw 40: nose toward image-left
    image = torch.zeros(3, 160, 160, dtype=torch.uint8)
    panel = _panel(FaceVisualizer(scale=1).draw(image, sample, "t")["faces"], 0, 2, (160, 160))
    centre, length = 80.0, 0.8 * 40
    nose = (panel == np.asarray(AXIS_COLORS[2], np.uint8)).all(-1)
    rows, cols = np.nonzero(nose)
    assert cols.min() < centre - 0.5 * length * np.sin(np.radians(40)) and cols.max() <= centre + 1
    right = (panel == np.asarray(AXIS_COLORS[0], np.uint8)).all(-1)
    assert np.nonzero(right)[1].max() >= centre + 0.9 * length * np.cos(np.radians(40)) - 2


# ----------------------------------------------------------------------------------------- stereo


@pytest.fixture(scope="module")
def stereo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vis_stereo")
    loader = dict(dataset=dict(data_root=tiny_cvgl_root()))
    config = _write_config(
        str(tmp / "ugcl_tiny.py"),
        str(config_path("ugcl_calib.py")),
        model=dict(tiny_ugcl_cfg(), _delete_=True),
        val_dataloader=loader,
        custom_hooks=[],
    )
    checkpoint = str(tmp / "random.pth")
    random_checkpoint(config, checkpoint)
    out = str(tmp / "vis")
    written = visualize([config, checkpoint, "--out", out, "--samples", "2", "--scale", "3"])
    return written, out, config


def test_stereo_true_horizon_row(stereo_run):
    from perception_mtl.datasets import CVGLStereoDataset

    written, out, _ = stereo_run
    assert sorted(osp.basename(p) for p in written) == ["0000_stereo.png", "0001_stereo.png"]
    dataset = CVGLStereoDataset(tiny_cvgl_root(), split="test")
    for index in range(2):
        fx, fy, u0, v0, *_, pitch = dataset.get_params(index)
        row = 3 * (v0 - fy * np.tan(pitch)) + 1  # pixel centres, 3x blocks
        picture = cv2.imread(osp.join(out, f"{index:04d}_stereo.png"))
        for view in range(2):
            panel = _panel(picture, view, 2, (3 * 32, 3 * 48))
            line = panel[int(round(row))]
            drawn = (line == np.asarray(GT_COLOR, np.uint8)).all(-1) | (line == np.asarray(PRED_COLOR, np.uint8)).all(
                -1
            )
            assert drawn.all(), f"sample {index} view {view}: horizon row {row:.1f} not drawn"
            assert (line == np.asarray(GT_COLOR, np.uint8)).all(-1).any() or (
                line == np.asarray(PRED_COLOR, np.uint8)
            ).all(-1).all()


def test_stereo_predicted_horizon_drawn():
    from mmengine.structures import BaseDataElement

    from perception_mtl.visualization import StereoVisualizer

    sample = BaseDataElement()
    sample.gt_calib = torch.tensor([40.0, 40.0, 24.0, 16.0, 0.5, 1.5, 0.0, 1.5, 14.0, 0.0])
    sample.pred_calib = torch.tensor([40.0, 40.0, 24.0, 16.0, 0.5, 1.5, 0.0, 1.5, 14.0, np.arctan(0.25)])
    pair = torch.zeros(2, 3, 32, 48, dtype=torch.uint8)
    panel = _panel(StereoVisualizer(scale=1).draw(pair, sample, "t")["stereo"], 1, 2, (32, 48))
    assert (panel[16] == np.asarray(GT_COLOR, np.uint8)).all()  # level camera: the horizon through v0
    assert (panel[6] == np.asarray(PRED_COLOR, np.uint8)).all()  # pitched down: 16 - 40 * 0.25 = 6


def test_occupancy_placed_with_lidar2ego():
    """Occ3D grids are in the ego frame: with nuScenes' LiDAR mount (yaw -90 deg, 0.94 m forward) a car voxel
    block at ego (10.94, 0) shows at LiDAR (0, 10)."""
    from mmdet3d.structures import Det3DDataSample

    from perception_mtl.visualization import DrivingVisualizer

    semantics = torch.full((200, 200, 16), 17, dtype=torch.uint8)
    i, j = int((10.94 + 40) / 0.4), int((0.0 + 40) / 0.4)
    semantics[i - 2 : i + 3, j - 2 : j + 3, 3] = 1  # z index 3: the 0.4 m slice
    lidar2ego = np.eye(4, dtype=np.float32)
    lidar2ego[:3, :3] = [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]  # Rz(-90 deg): LiDAR x is the ego's right
    lidar2ego[:3, 3] = [0.94, 0.0, 1.84]
    sample = Det3DDataSample(metainfo=dict(lidar2ego=lidar2ego))
    sample.gt_occ = dict(semantics=semantics, mask_camera=torch.ones(200, 200, 16, dtype=torch.bool))
    panels = dict(DrivingVisualizer().bev_panels(dict(points=torch.zeros(0, 4)), sample, np.eye(4)))
    occ = next(image for title, image in panels.items() if title.startswith("occ GT"))
    assert (occ[_bev_pixel(0.0, 10.0)] == OCC_COLORS[1]).all()
    assert (occ[_bev_pixel(10.0, 0.0)] == BACKGROUND).all()


def test_face_predictions_mapped_back_to_input_pixels():
    """Predictions are in original-image pixels; the network input is original * scale_factor + img_offset."""
    from mmengine.structures import InstanceData

    from perception_mtl.testing.faces import face_sample
    from perception_mtl.visualization import FaceVisualizer

    sample = face_sample([[20, 20, 60, 60]], img_size=96)
    sample.set_metainfo(dict(scale_factor=(2.0, 2.0), img_offset=(4.0, 6.0)))
    pred = InstanceData()
    pred.bboxes = torch.tensor([[10.0, 10.0, 30.0, 30.0]])  # -> input [24, 26, 64, 66]
    pred.scores = torch.tensor([0.9])
    pred.landmarks = torch.tensor([[[15.0, 15.0], [25.0, 15.0], [20.0, 20.0], [16.0, 25.0], [24.0, 25.0]]])
    pred.poses = torch.tensor([[0.0, 0.0, 0.0]])
    sample.pred_instances = pred
    picture = FaceVisualizer(scale=1).draw(torch.zeros(3, 96, 96, dtype=torch.uint8), sample, "t")["faces"]
    panel = _panel(picture, 1, 2, (96, 96))
    assert _near(panel, 26, 24, BOX_COLOR, radius=0) and _near(panel, 66, 64, BOX_COLOR, radius=0)
    assert _near(panel, 2 * 15 + 6, 2 * 15 + 4, LANDMARK_COLOR, radius=0)


def test_unknown_family_is_named():
    from mmengine.structures import BaseDataElement

    from perception_mtl.visualization import SampleVisualizer

    sample = BaseDataElement()
    sample.gt_sem_seg = torch.zeros(8, 8)  # an M3ViT dense-scene sample
    with pytest.raises(TypeError, match=r"inputs Tensor \(3, 8, 8\) with sample fields \['gt_sem_seg'\]"):
        SampleVisualizer().draw(torch.zeros(3, 8, 8), sample, "t")
