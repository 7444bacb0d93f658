"""nuScenes (real or synthetic) -> info files in mmdet3d's v2 format, extended for multi-task use.

Reads any nuScenes-format root through nuscenes-devkit and writes ``nuscenes_infos_train.pkl`` and
``nuscenes_infos_val.pkl`` (v1.0-mini: the ``mini_train`` / ``mini_val`` splits; v1.0-trainval:
``train`` / ``val``; v1.0-test: ``nuscenes_infos_test.pkl``). The keys and conventions are those of
mmdet3d 1.x (``tools/dataset_converters/nuscenes_converter.py`` followed by
``update_infos_to_v2.py``), so infos made by mmdet3d load the same way::

    {'metainfo': {'categories': {'car': 0, ..., 'barrier': 9}, 'dataset': 'nuscenes',
                  'version': 'v1.0-mini', 'info_version': '1.1'},
     'data_list': [{
        'sample_idx': int (index in this file), 'token': sample token, 'timestamp': seconds,
        'ego2global': 4x4 (ego at the LiDAR key frame -> global),
        'lidar_points': {'num_pts_feats': 5, 'lidar_path': file name (under samples/LIDAR_TOP),
                         'lidar2ego': 4x4},
        'lidar_sweeps': [  # up to max_sweeps, newest first (key frames of earlier samples included)
            {'lidar_points': {'lidar2ego': 4x4 (of the sweep), 'lidar2sensor': 4x4 [R^T | -t] of
                              sweep -> key LiDAR (R, t), the layout mmdet3d's loader decodes; not
                              a true inverse, and not what mmdet3d's converter writes, see
                              _sweep_code), 'lidar_path': 'sweeps/LIDAR_TOP/...' or
                              'samples/LIDAR_TOP/...' (relative to the root)},
             'ego2global': 4x4, 'timestamp': seconds, 'sample_data_token': str}],
        'images': {'CAM_FRONT': {'img_path': file name (under samples/CAM_FRONT), 'cam2img': 3x3,
                                 'cam2ego': 4x4, 'lidar2cam': 4x4 (key-frame LiDAR -> camera at its own
                                 timestamp, float32), 'sample_data_token': str, 'timestamp': seconds,
                                 'height': int, 'width': int}, ...six cameras},
        'instances': [{'bbox_3d': [x, y, z, l, w, h, yaw] (LiDAR frame, (x, y, z) the box's gravity
                       centre, l along the heading, yaw from the x axis), 'bbox_label': int (-1 for
                       non-detection categories), 'bbox_label_3d': int, 'velocity': [vx, vy] (LiDAR
                       frame, m/s, NaN without neighbours), 'num_lidar_pts': int, 'num_radar_pts': int,
                       'bbox_3d_isvalid': bool (points > 0)}],
        # extensions
        'scene_token': str, 'scene_name': str, 'map_location': str (log location, a map name),
        'occ_path': 'gts/<scene>/<token>/labels.npz' or None}]}

As in mmdet3d, box z is the gravity centre: ``LiDARInstance3DBoxes(..., origin=(0.5, 0.5, 0.5))``
turns it into mmdet3d's bottom-centre convention when loading.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import os.path as osp
import pickle
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
from mmdet3d.datasets import NuScenesDataset
from mmengine.utils import ProgressBar
from nuscenes.nuscenes import NuScenes
from nuscenes.utils import splits
from pyquaternion import Quaternion

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.datasets.converters.nuscenes_schema import (
    CAMERA_CHANNELS,
    DETECTION_CLASS_OF_CATEGORY,
    OBJECT_CATEGORIES,
    TABLES,
)

# The detection classes and their label order: those of mmdet3d's NuScenesDataset.
CLASSES: tuple[str, ...] = tuple(NuScenesDataset.METAINFO["classes"])


class NuScenesDataError(BadSampleError):
    """Bad converter input: names the file and, where there is one, the sample token.

    A :class:`BadSampleError`, the error the dataset loaders raise, so one ``except`` catches both.
    """

    def __init__(self, message: str, path: str, sample_token: str | None = None) -> None:
        super().__init__(message, path, sample_token)
        self.sample_token = sample_token


@dataclass
class ConversionReport:
    """What a conversion wrote and what it skipped."""

    files: dict[str, int] = field(default_factory=dict)  # info file -> number of samples
    skipped: list[str] = field(default_factory=list)  # error messages of skipped samples


def _sweep_code(sensor2lidar: np.ndarray) -> list:
    """The ``lidar2sensor`` field we write: [R^T | -t] for the sweep -> key LiDAR transform (R, t).

    Not the inverse matrix its name suggests, but the layout mmdet3d's ``LoadPointsFromMultiSweeps``
    decodes (``p @ code[:3, :3] - code[:3, 3] = R p + t``), so mmdet3d's loader and ours both
    read our infos exactly. mmdet3d 1.4's own converter (``update_infos_to_v2.py``) writes the
    true inverse [R^T | -R^T t] instead, which its loader misplaces by (R^T - I) t; our loader
    tells the two apart by the poses (``decode_sweep_code`` in ``load_lidar_points_with_sweeps``).
    """
    code = np.eye(4)
    code[:3, :3] = sensor2lidar[:3, :3].T
    code[:3, 3] = -sensor2lidar[:3, 3]
    return code.astype(np.float32).tolist()


def _transform(rotation, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Quaternion(rotation).rotation_matrix
    m[:3, 3] = translation
    return m


class NuScenesInfoConverter:
    """Writes the info files of a nuScenes-format root.

    Args:
        root: dataset root (holds ``<version>/``, ``samples/``, ``sweeps/``, ``maps/``, optionally ``gts/``).
        version: 'v1.0-mini', 'v1.0-trainval' or 'v1.0-test'.
        out_dir: where the ``.pkl`` files go.
        max_sweeps: LiDAR sweeps per sample (mmdet3d uses 10).
        skip_bad: skip samples with bad files (warning and count) instead of raising.
        prefix: info file name prefix.
        progress: show a progress bar (with ETA) over the samples on stdout.
    """

    def __init__(
        self,
        root: str,
        version: str,
        out_dir: str,
        max_sweeps: int = 10,
        skip_bad: bool = False,
        prefix: str = "nuscenes",
        progress: bool = True,
    ) -> None:
        if version not in ("v1.0-mini", "v1.0-trainval", "v1.0-test"):
            raise ValueError(f"unknown nuScenes version {version!r}")
        self.root, self.version, self.out_dir = root, version, out_dir
        self.max_sweeps, self.skip_bad, self.prefix = max_sweeps, skip_bad, prefix
        self.progress = progress

    # ------------------------------------------------------------------ run
    def run(self) -> ConversionReport:
        """Converts; returns the report. Raises :class:`NuScenesDataError` on bad input unless skipping."""
        nusc = self.load()
        if self.version == "v1.0-mini":
            wanted = {"train": splits.mini_train, "val": splits.mini_val}
        elif self.version == "v1.0-trainval":
            wanted = {"train": splits.train, "val": splits.val}
        else:
            wanted = {"test": splits.test}
        scene_split = {name: split for split, names in wanted.items() for name in names}
        lists: dict[str, list[dict]] = {split: [] for split in wanted}
        report = ConversionReport()
        ignored: set[str] = set()
        progress = ProgressBar(len(nusc.sample), file=sys.stdout) if self.progress else None
        for sample in nusc.sample:
            if progress is not None:
                progress.update()  # the devkit tables are loaded; one tick per key frame
            scene = nusc.get("scene", sample["scene_token"])
            split = scene_split.get(scene["name"])
            if split is None:
                continue
            try:
                info = self.sample_info(nusc, sample, with_annotations=split != "test", ignored=ignored)
            except NuScenesDataError as err:
                if not self.skip_bad:
                    raise
                warnings.warn(f"skipping a bad sample: {err}", stacklevel=2)
                report.skipped.append(str(err))
                continue
            info["sample_idx"] = len(lists[split])
            lists[split].append(info)
        if progress is not None:
            sys.stdout.write("\n")  # end the bar's line
        if report.skipped:
            warnings.warn(f"{len(report.skipped)} bad samples skipped", stacklevel=2)
        categories = {name: i for i, name in enumerate(CLASSES)}
        categories.update({name: -1 for name in sorted(ignored)})
        metainfo = {"categories": categories, "dataset": "nuscenes", "version": self.version, "info_version": "1.1"}
        os.makedirs(self.out_dir, exist_ok=True)
        for split, data_list in lists.items():
            path = osp.join(self.out_dir, f"{self.prefix}_infos_{split}.pkl")
            with open(path, "wb") as f:
                pickle.dump({"metainfo": metainfo, "data_list": data_list}, f, protocol=pickle.HIGHEST_PROTOCOL)
            report.files[path] = len(data_list)
        return report

    def load(self):
        """Loads the tables through the devkit; a broken table raises an error naming it."""
        table_root = osp.join(self.root, self.version)
        if not osp.isdir(self.root):
            raise NuScenesDataError("nuScenes root not found (--root)", self.root)
        if not osp.isdir(table_root):
            found = sorted(os.listdir(self.root))
            shown = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "nothing"
            raise NuScenesDataError(
                f"no {self.version} tables here: {self.root} is not a nuScenes root for {self.version} (expected "
                f"{self.version}/ with the JSON tables, samples/, sweeps/, maps/; found {shown})",
                table_root,
            )
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the devkit prints while loading
                return NuScenes(version=self.version, dataroot=self.root, verbose=False)
        except Exception as err:
            self._diagnose(table_root, err)
            raise NuScenesDataError(f"the devkit cannot load the tables: {err!r}", table_root) from err

    # --------------------------------------------------------------- sample
    def sample_info(self, nusc, sample: dict, with_annotations: bool = True, ignored: set[str] | None = None) -> dict:
        """The v2 info dictionary of one sample (without ``sample_idx``)."""
        token = sample["token"]
        try:
            lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
            lidar_cs = nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
            lidar_pose = nusc.get("ego_pose", lidar_sd["ego_pose_token"])
        except KeyError as err:
            raise NuScenesDataError(f"missing LIDAR_TOP record {err}", self._table("sample_data"), token) from err
        lidar2ego = _transform(lidar_cs["rotation"], lidar_cs["translation"])
        ego2global = _transform(lidar_pose["rotation"], lidar_pose["translation"])
        global2lidar = np.linalg.inv(ego2global @ lidar2ego)
        self._check_points(osp.join(self.root, lidar_sd["filename"]), token, full=True)

        info = {
            "sample_idx": None,
            "token": token,
            "timestamp": sample["timestamp"] / 1e6,
            "ego2global": ego2global.tolist(),
            "images": {},
            "lidar_points": {
                "num_pts_feats": 5,
                "lidar_path": osp.basename(lidar_sd["filename"]),
                "lidar2ego": lidar2ego.tolist(),
            },
            "lidar_sweeps": [],
            "instances": [],
        }
        sd = lidar_sd
        while len(info["lidar_sweeps"]) < self.max_sweeps and sd["prev"]:
            sd = nusc.get("sample_data", sd["prev"])
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            pose = nusc.get("ego_pose", sd["ego_pose_token"])
            sweep2ego = _transform(cs["rotation"], cs["translation"])
            sweep_ego2global = _transform(pose["rotation"], pose["translation"])
            sensor2lidar = global2lidar @ sweep_ego2global @ sweep2ego
            self._check_points(osp.join(self.root, sd["filename"]), token, full=False)
            info["lidar_sweeps"].append(
                {
                    "lidar_points": {
                        "lidar2ego": sweep2ego.tolist(),
                        "lidar2sensor": _sweep_code(sensor2lidar),
                        "lidar_path": sd["filename"],
                    },
                    "ego2global": sweep_ego2global.tolist(),
                    "timestamp": sd["timestamp"] / 1e6,
                    "sample_data_token": sd["token"],
                }
            )
        for cam in CAMERA_CHANNELS:
            if cam not in sample["data"]:
                raise NuScenesDataError(f"no {cam} image for this sample", self._table("sample_data"), token)
            cam_sd = nusc.get("sample_data", sample["data"][cam])
            cs = nusc.get("calibrated_sensor", cam_sd["calibrated_sensor_token"])
            pose = nusc.get("ego_pose", cam_sd["ego_pose_token"])
            cam2ego = _transform(cs["rotation"], cs["translation"])
            cam2lidar = global2lidar @ _transform(pose["rotation"], pose["translation"]) @ cam2ego
            self._check_image(osp.join(self.root, cam_sd["filename"]), token)
            info["images"][cam] = {
                "img_path": osp.basename(cam_sd["filename"]),
                "cam2img": np.asarray(cs["camera_intrinsic"], dtype=np.float64).tolist(),
                "sample_data_token": cam_sd["token"],
                "timestamp": cam_sd["timestamp"] / 1e6,
                "cam2ego": cam2ego.tolist(),
                "lidar2cam": np.linalg.inv(cam2lidar).astype(np.float32).tolist(),
                "height": int(cam_sd.get("height", 0)),
                "width": int(cam_sd.get("width", 0)),
            }
        if with_annotations:
            info["instances"] = self._instances(nusc, sample, lidar_sd, ego2global, lidar2ego, ignored)
        scene = nusc.get("scene", sample["scene_token"])
        log = nusc.get("log", scene["log_token"])
        occ = osp.join("gts", scene["name"], token, "labels.npz")
        info.update(
            scene_token=scene["token"],
            scene_name=scene["name"],
            map_location=log["location"],
            occ_path=occ if osp.isfile(osp.join(self.root, occ)) else None,
        )
        return info

    def _instances(self, nusc, sample, lidar_sd, ego2global, lidar2ego, ignored) -> list[dict]:
        token = sample["token"]
        _, boxes, _ = nusc.get_sample_data(lidar_sd["token"])  # all annotations, in the LiDAR frame
        anns = [nusc.get("sample_annotation", t) for t in sample["anns"]]
        by_token = {b.token: b for b in boxes}
        global2lidar_rot = (ego2global[:3, :3] @ lidar2ego[:3, :3]).T
        instances = []
        for ann in anns:
            name = ann["category_name"]
            if name not in OBJECT_CATEGORIES:
                raise NuScenesDataError(
                    f"unknown category {name!r} (annotation {ann['token']})", self._table("category"), token
                )
            box = by_token[ann["token"]]
            det_name = DETECTION_CLASS_OF_CATEGORY.get(name, name)
            if det_name in CLASSES:
                label = CLASSES.index(det_name)
            else:
                label = -1
                if ignored is not None:
                    ignored.add(det_name)
            velocity = np.array([*nusc.box_velocity(ann["token"])[:2], 0.0])
            velocity = global2lidar_rot @ velocity
            width, length, height = box.wlh
            instances.append(
                {
                    "bbox_3d": [float(v) for v in box.center]
                    + [float(length), float(width), float(height)]
                    + [float(box.orientation.yaw_pitch_roll[0])],
                    "bbox_label": label,
                    "bbox_label_3d": label,
                    "velocity": [float(velocity[0]), float(velocity[1])],
                    "num_lidar_pts": int(ann["num_lidar_pts"]),
                    "num_radar_pts": int(ann["num_radar_pts"]),
                    "bbox_3d_isvalid": bool(ann["num_lidar_pts"] + ann["num_radar_pts"] > 0),
                }
            )
        return instances

    # -------------------------------------------------------------- checks
    def _check_points(self, path: str, token: str, full: bool) -> None:
        """A .pcd.bin must exist, hold whole N x 5 float32 rows and (key frames) only finite values."""
        if not osp.isfile(path):
            raise NuScenesDataError("LiDAR file missing", path, token)
        size = osp.getsize(path)
        if size == 0 or size % (5 * 4):
            raise NuScenesDataError(
                f"truncated LiDAR file ({size} bytes is not a whole number of 5-float points)", path, token
            )
        if full:
            points = np.fromfile(path, dtype=np.float32)
            if not np.isfinite(points).all():
                raise NuScenesDataError(
                    f"{int((~np.isfinite(points)).sum())} non-finite values in the points", path, token
                )

    def _check_image(self, path: str, token: str) -> None:
        """A camera image must exist and be a complete JPEG (start and end markers present)."""
        if not osp.isfile(path):
            raise NuScenesDataError("image missing", path, token)
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, osp.getsize(path) - 2))
            tail = f.read(2)
        if head != b"\xff\xd8" or tail != b"\xff\xd9":
            raise NuScenesDataError("truncated or corrupt JPEG", path, token)

    def _table(self, name: str) -> str:
        return osp.join(self.root, self.version, f"{name}.json")

    def _diagnose(self, table_root: str, err: Exception) -> None:
        """Finds the table behind a devkit load failure and raises an error naming it."""
        tables = {}
        for name in TABLES:
            path = osp.join(table_root, f"{name}.json")
            if not osp.isfile(path):
                raise NuScenesDataError("table missing", path) from err
            try:
                with open(path) as f:
                    tables[name] = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise NuScenesDataError(f"not valid JSON: {exc}", path) from err
            if not isinstance(tables[name], list):
                raise NuScenesDataError("a table must be a JSON list of records", path) from err
        tokens = {name: {r.get("token") for r in recs} for name, recs in tables.items()}
        references = (
            ("sample_data", "sample_token", "sample"),
            ("sample_data", "calibrated_sensor_token", "calibrated_sensor"),
            ("sample_data", "ego_pose_token", "ego_pose"),
            ("sample_annotation", "sample_token", "sample"),
            ("sample_annotation", "instance_token", "instance"),
            ("instance", "category_token", "category"),
            ("calibrated_sensor", "sensor_token", "sensor"),
            ("sample", "scene_token", "scene"),
            ("scene", "log_token", "log"),
        )
        for table, key, target in references:
            for rec in tables[table]:
                if key not in rec:
                    raise NuScenesDataError(f"record {rec.get('token')} has no {key!r}", self._table(table)) from err
                if rec[key] not in tokens[target]:
                    sample = rec.get("sample_token") if table != "sample" else rec.get("token")
                    raise NuScenesDataError(
                        f"record {rec.get('token')}: {key} {rec[key]} is not in {target}", self._table(table), sample
                    ) from err
        for rec in tables["map"]:
            if "log_tokens" not in rec or not osp.isfile(osp.join(self.root, rec.get("filename", ""))):
                raise NuScenesDataError(
                    f"map record {rec.get('token')} lacks log_tokens or its mask file", self._table("map")
                ) from err
