"""nuScenes for multi-task BEV models: detection boxes, map raster and occupancy from one info file."""

from __future__ import annotations

import difflib
import math
import os
import os.path as osp
import warnings

from mmdet3d.datasets import NuScenesDataset

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.datasets.transforms.load_multi_view_images import NUSCENES_CAMERAS
from perception_mtl.registry import DATASETS

DEFAULT_DATA_PREFIX = dict(
    pts="samples/LIDAR_TOP", sweeps="sweeps/LIDAR_TOP", **{c: f"samples/{c}" for c in NUSCENES_CAMERAS}
)
REQUIRED_INFO_KEYS = ("token", "lidar_points", "ego2global")
# mmdet3d's v2 info format ('data_list' + 'metainfo'); info_version 1.x is what both converters write.
INFO_MAJOR_VERSION = "1"


@DATASETS.register_module()
class NuScenesMTLDataset(NuScenesDataset):
    """mmdet3d's NuScenesDataset (v2 infos) extended for detection + map + occupancy.

    Info records may carry, beside mmdet3d's keys, ``map_location``, ``scene_token``,
    ``scene_name`` and ``occ_path`` (relative to ``data_root``); infos written by mmdet3d's own
    converter load too (they just lack map and occupancy references).

    Bad input never passes silently: a broken info file raises naming the file; a sample whose
    files are missing, truncated or hold NaNs raises ``BadSampleError`` naming the file and sample
    token. With ``skip_bad_samples=True`` a training set instead warns, counts the sample in
    ``self.num_skipped`` and draws another one (evaluation still raises: skipping would change
    the benchmark).

    Args:
        data_root: dataset root (the nuScenes folder).
        ann_file: info file, relative to ``data_root`` or absolute.
        skip_bad_samples: see above.
        data_prefix: folders of the LiDAR, sweeps and cameras under ``data_root``.
        max_box_distance: a box whose centre is farther than this (metres) from the LiDAR is an
            error (boxes must be in the LiDAR frame; global coordinates are hundreds of metres away);
            None turns the check off. Boxes merely outside the point-cloud range are the range
            filter's business, not an error.
        **kwargs: NuScenesDataset's arguments (pipeline, modality, test_mode, ...).
    """

    def __init__(
        self,
        data_root: str,
        ann_file: str,
        skip_bad_samples: bool = False,
        data_prefix: dict | None = None,
        modality: dict | None = None,
        max_box_distance: float | None = 500.0,
        **kwargs,
    ) -> None:
        self.skip_bad_samples = skip_bad_samples
        self.num_skipped = 0
        self.max_box_distance = max_box_distance
        # Set by BadSampleReportHook: each skipped sample appends a line (also from worker processes).
        self.bad_sample_log: str | None = None
        self._check_classes(kwargs.get("metainfo"))
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=dict(DEFAULT_DATA_PREFIX, **(data_prefix or {})),
            modality=modality or dict(use_camera=True, use_lidar=True),
            **kwargs,
        )

    def _check_classes(self, metainfo: dict | None) -> None:
        """A class name the dataset does not know is named with close matches (mmdet3d raised a bare
        ``tuple.index(x): x not in tuple``)."""
        known = list(self.METAINFO["classes"])
        for name in (metainfo or {}).get("classes") or ():
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=3)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"{type(self).__name__}: unknown class {name!r} in metainfo.classes{hint} "
                    f"(known: {', '.join(known)})"
                )

    def load_data_list(self) -> list[dict]:
        if self.data_root and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f"data root not found: {self.data_root} (dataset data_root; make the data with "
                "tools/create_data.py or point data_root at it)"
            )
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f"info file not found: {self.ann_file}")
        try:
            data_list = super().load_data_list()
        except BadSampleError:
            raise
        except Exception as err:  # pickle, format or schema errors: say which file
            raise ValueError(
                f"broken info file {self.ann_file}: {type(err).__name__}: {err}{self._format_hint()}"
            ) from err
        version = str(self._metainfo.get("info_version", INFO_MAJOR_VERSION))
        if version.split(".")[0] != INFO_MAJOR_VERSION:
            raise ValueError(
                f"info file {self.ann_file} has info_version {version!r}; this dataset reads mmdet3d's v2 format, "
                f"info_version {INFO_MAJOR_VERSION}.x: regenerate it with tools/create_data.py"
            )
        return data_list

    def _format_hint(self) -> str:
        """Names the format when the info file is mmdet3d's older v1 layout ('infos' + 'metadata')."""
        try:
            from mmengine.fileio import load

            keys = set(load(self.ann_file))
        except Exception:
            return ""
        if "infos" in keys:
            return (
                f" (top-level keys {sorted(keys)}: an mmdet3d v1 info file from another format version; this dataset "
                "reads the v2 format 'data_list' + 'metainfo': regenerate it with tools/create_data.py or convert it "
                "with mmdet3d's tools/dataset_converters/update_infos_to_v2.py)"
            )
        return f" (top-level keys {sorted(keys)}; expected 'data_list' and 'metainfo')"

    def _check_boxes(self, info: dict) -> None:
        for j, instance in enumerate(info.get("instances") or []):
            box = instance.get("bbox_3d")
            if box is None:
                continue
            values = [float(v) for v in box]
            if len(values) < 7 or not all(math.isfinite(v) for v in values):
                raise BadSampleError(
                    f"instance {j} has bbox_3d {values}: needs 7 finite values (x, y, z, l, w, h, yaw)",
                    self.ann_file,
                    info.get("token"),
                )
            if min(values[3:6]) <= 0:
                raise BadSampleError(
                    f"instance {j} has bbox_3d size {values[3:6]}: l, w, h must be positive",
                    self.ann_file,
                    info.get("token"),
                )
            dist = math.hypot(*values[:3])
            if self.max_box_distance is not None and dist > self.max_box_distance:
                raise BadSampleError(
                    f"instance {j} box centre {values[:3]} is {dist:.0f} m from the LiDAR (max_box_distance="
                    f"{self.max_box_distance}): boxes must be in the LiDAR frame, not global coordinates",
                    self.ann_file,
                    info.get("token"),
                )

    def parse_data_info(self, info: dict) -> dict | list[dict]:
        missing = [k for k in REQUIRED_INFO_KEYS if k not in info]
        if missing:
            raise BadSampleError(f"info record lacks {missing}", self.ann_file, info.get("token"))
        for j, instance in enumerate(info.get("instances") or []):
            for key in ("bbox_label_3d", "bbox_label"):
                label = instance.get(key, -1)
                if label not in self.label_mapping:  # mmdet3d would fail with a bare KeyError
                    classes = self.METAINFO["classes"]
                    raise BadSampleError(
                        f"instance {j} has {key} {label}, outside the class list (0..{len(classes) - 1}: "
                        f"{', '.join(classes)}; -1 = ignore)",
                        self.ann_file,
                        info.get("token"),
                    )
        self._check_boxes(info)
        if info.get("occ_path"):
            info["occ_path"] = osp.join(self.data_root or "", info["occ_path"])
        return super().parse_data_info(info)

    def prepare_data(self, index: int) -> dict | None:
        try:
            return super().prepare_data(index)
        except BadSampleError as err:
            if not self.skip_bad_samples or self.test_mode:
                raise
            self.num_skipped += 1
            warnings.warn(f"skipping bad sample ({self.num_skipped} so far): {err}", stacklevel=2)
            if self.bad_sample_log:
                # One short append per line: whole lines even from several worker processes.
                with open(self.bad_sample_log, "a") as f:
                    f.write(f"index {index}: {err}".replace("\n", " ") + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            return None
