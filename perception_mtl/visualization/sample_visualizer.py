"""One entry point that draws a packed sample of any model family (driving, faces, stereo)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict

from .driving_visualizer import OCC3D_GRID, OCC3D_RANGE, DrivingVisualizer
from .face_visualizer import FaceVisualizer
from .stereo_visualizer import StereoVisualizer


def _pipeline_step(cfg: Config | ConfigDict | dict, split: str, name: str) -> dict | None:
    """The first transform of ``{split}_dataloader.dataset.pipeline`` whose type ends with ``name``."""
    loader = cfg.get(f"{split}_dataloader") or {}
    for step in (loader.get("dataset") or {}).get("pipeline") or []:
        if str(step.get("type", "")).split(".")[-1] == name:
            return step
    return None


def unbatch(data_batch: dict, outputs: Sequence | None = None) -> list[tuple[object, object]]:
    """Splits a collated batch (``pseudo_collate``: inputs as a dict of per-sample lists, a list, or a
    stacked tensor) into ``(inputs, data_sample)`` per sample; ``outputs`` (the model's predicted samples)
    replace the batch's samples when given."""
    inputs, samples = data_batch["inputs"], list(outputs if outputs is not None else data_batch["data_samples"])
    if isinstance(inputs, dict):
        per_sample = [{key: value[i] for key, value in inputs.items()} for i in range(len(samples))]
    else:
        per_sample = [inputs[i] for i in range(len(samples))]
    return list(zip(per_sample, samples))


class SampleVisualizer:
    """Chooses the drawing for a packed sample by its inputs and returns named BGR pictures.

    - ``dict`` inputs (``points`` / ``img`` / ``calib``): a multi-task driving sample, :class:`DrivingVisualizer`
      (pictures ``bev``, ``cameras``);
    - a (2, 3, H, W) tensor: a stereo pair, :class:`StereoVisualizer` (``stereo``);
    - a (3, H, W) tensor: a face image, :class:`FaceVisualizer` (``faces``).

    Args:
        driving, faces, stereo: the family visualisers (defaults when None).
    """

    def __init__(
        self,
        driving: DrivingVisualizer | None = None,
        faces: FaceVisualizer | None = None,
        stereo: StereoVisualizer | None = None,
    ) -> None:
        self.driving = driving or DrivingVisualizer()
        self.faces = faces or FaceVisualizer()
        self.stereo = stereo or StereoVisualizer()

    @classmethod
    def from_config(
        cls,
        cfg: Config | ConfigDict | dict,
        split: str = "val",
        score_thr: float | None = None,
        occ_height: float = 0.4,
        scale: int | None = None,
    ) -> SampleVisualizer:
        """Reads the geometry the pictures need from a config: ``bev_range`` (or ``point_cloud_range``), the
        map grid of ``{split}_dataloader``'s ``LoadBEVMapSegmentation`` (``xbound``, ``ybound``) and the Occ3D
        grid of its ``LoadOccupancy`` (``point_cloud_range``, ``grid_size``); defaults where absent.

        Args:
            score_thr: predictions below it are not drawn (default 0.3 boxes, 0.5 faces).
            occ_height: ego-frame height (metres) of the occupancy slice.
            scale: integer image upscaling (default 2 cameras and faces, 3 stereo pairs).
        """
        bev_range = cfg.get("bev_range") or cfg.get("point_cloud_range") or (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
        map_step = _pipeline_step(cfg, split, "LoadBEVMapSegmentation") or {}
        occ_step = _pipeline_step(cfg, split, "LoadOccupancy") or {}
        driving = DrivingVisualizer(
            bev_range=bev_range,
            map_xbound=map_step.get("xbound", (-50.0, 50.0, 0.5)),
            map_ybound=map_step.get("ybound", (-50.0, 50.0, 0.5)),
            occ_range=occ_step.get("point_cloud_range", OCC3D_RANGE),
            occ_grid=occ_step.get("grid_size", OCC3D_GRID),
            occ_height=occ_height,
            score_thr=0.3 if score_thr is None else score_thr,
            camera_scale=scale or 2,
        )
        faces = FaceVisualizer(score_thr=0.5 if score_thr is None else score_thr, scale=scale or 2)
        return cls(driving, faces, StereoVisualizer(scale=scale or 3))

    def draw(self, inputs, sample, header: str) -> dict[str, np.ndarray]:
        """``{picture name: (H, W, 3) uint8 BGR}`` for one sample (see the class docstring).

        Raises:
            TypeError: the sample is of no family drawn here (e.g. M3ViT's dense scenes), naming what it got.
        """
        if isinstance(inputs, dict) and ("points" in inputs or "img" in inputs):
            return self.driving.draw(inputs, sample, header)
        is_array = isinstance(inputs, (torch.Tensor, np.ndarray))
        if is_array and inputs.ndim == 4 and tuple(inputs.shape[:2]) == (2, 3) and "gt_calib" in sample:
            return self.stereo.draw(inputs, sample, header)
        if is_array and inputs.ndim == 3 and "gt_instances" in sample:
            return self.faces.draw(inputs, sample, header)
        what = sorted(inputs) if isinstance(inputs, dict) else tuple(getattr(inputs, "shape", ()))
        fields = sorted(k for k in sample.keys()) if hasattr(sample, "keys") else type(sample).__name__
        raise TypeError(
            f"SampleVisualizer: no drawing for inputs {type(inputs).__name__} {what} with sample fields {fields}; "
            "drawn are driving samples (inputs with 'points' / 'img'), stereo pairs ((2, 3, H, W) with gt_calib) "
            "and faces ((3, H, W) with gt_instances)"
        )
