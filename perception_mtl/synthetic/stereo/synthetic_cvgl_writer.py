"""Writes rendered road stereo pairs in the CVGL layout (see ``perception_mtl.datasets.cvgl_stereo_dataset``).

Sample ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so the same settings write the
same files. The train/test split is a permutation of the rows drawn from ``default_rng([seed,
SPLIT_STREAM])`` and stored in ``splits/train.npy`` / ``splits/test.npy``: fixed, shuffled and
disjoint. Samples are written into memory-mapped arrays and flushed every ``FLUSH_EVERY`` rows;
if rendering fails part-way, every earlier row is flushed, ``meta.json`` records
``num_written`` and ``complete: false``, and the error names the file and the index.

``meta.json`` also holds the units, the sampling ranges and the mean / std of each target over the
training split (what the calibration head's normalisation uses).
"""

from __future__ import annotations

import dataclasses
import json
import os
import os.path as osp
import sys
import time
from multiprocessing import get_context

import numpy as np
from mmengine.utils import ProgressBar

from perception_mtl.datasets.bad_sample_error import BadSampleError
from perception_mtl.datasets.cvgl_stereo_dataset import (
    CVGL_OPTIONAL_FIELDS,
    CVGL_PARAM_FIELDS,
    PARAM_NAMES,
    PARAM_TO_FIELD,
    cvgl_path,
    split_path,
)

from .road_stereo_renderer import RigRanges, render_stereo_pair

SPLIT_STREAM = 1_000_003
FLUSH_EVERY = 64


def render_sample(seed: int, index: int, width: int, height: int, ranges: RigRanges, supersample: int = 1) -> dict:
    """One CVGL row: the 13 parameter fields, ``doffs`` and both images."""
    rig, left, right = render_stereo_pair(np.random.default_rng([seed, index]), width, height, ranges, supersample)
    t = rig.translation
    values = dict(
        fx=rig.fx,
        fy=rig.fy,
        U0=rig.u0,
        V0=rig.v0,
        disparity=rig.disparity,
        x=t[0],
        y=t[1],
        z=t[2],
        baseline=rig.baseline,
        pitch=rig.pitch,
        xworld=rig.centre[0],
        yworld=rig.centre[1],
        zworld=rig.centre[2],
        doffs=rig.doffs,
    )
    return dict(params=values, left_img=left, right_img=right)


def _render_job(args: tuple) -> dict:
    return render_sample(*args)


class SyntheticCVGLWriter:
    """Renders ``num_samples`` stereo pairs into ``out_dir`` (CVGL layout + split + meta).

    Args:
        out_dir: directory to create (existing CVGL files in it are overwritten, other files kept).
        num_samples: rows to write.
        width, height: image size in pixels.
        test_ratio: share of rows in the test split.
        seed: generator seed.
        workers: rendering processes (1 renders in this process).
        ranges: rig sampling ranges (default :class:`RigRanges`).
        supersample: s x s rays per pixel, averaged (anti-aliasing; see ``render_view``).
    """

    def __init__(
        self,
        out_dir: str,
        num_samples: int = 8000,
        width: int = 128,
        height: int = 96,
        test_ratio: float = 0.2,
        seed: int = 0,
        workers: int = 1,
        ranges: RigRanges | None = None,
        supersample: int = 1,
    ) -> None:
        if num_samples < 2:
            raise ValueError(f"SyntheticCVGLWriter: num_samples must be >= 2, got {num_samples}")
        if not 0 < test_ratio < 1:
            raise ValueError(f"SyntheticCVGLWriter: test_ratio must be in (0, 1), got {test_ratio}")
        if width < 16 or height < 16:
            raise ValueError(f"SyntheticCVGLWriter: images must be at least 16x16, got {width}x{height}")
        self.out_dir = out_dir
        self.num_samples = num_samples
        self.width, self.height = width, height
        self.test_ratio = test_ratio
        self.seed = seed
        self.workers = max(1, int(workers))
        self.ranges = ranges or RigRanges()
        if supersample < 1:
            raise ValueError(f"SyntheticCVGLWriter: supersample must be >= 1, got {supersample}")
        self.supersample = int(supersample)

    def split(self) -> dict[str, np.ndarray]:
        """The fixed shuffled split: disjoint, sorted row indices per split."""
        order = np.random.default_rng([self.seed, SPLIT_STREAM]).permutation(self.num_samples)
        num_test = max(1, int(round(self.num_samples * self.test_ratio)))
        return dict(train=np.sort(order[num_test:]), test=np.sort(order[:num_test]))

    def _meta(self, num_written: int, complete: bool, params: dict[str, np.ndarray], split: dict) -> dict:
        train = split["train"][split["train"] < num_written]
        stats = (
            {
                name: dict(
                    mean=float(params[PARAM_TO_FIELD[name]][train].mean()),
                    std=float(params[PARAM_TO_FIELD[name]][train].std()),
                )
                for name in PARAM_NAMES
            }
            if len(train)
            else {}
        )
        return dict(
            layout="CVGL",
            complete=complete,
            num_samples=self.num_samples,
            num_written=num_written,
            image_size=dict(width=self.width, height=self.height),
            rays_per_pixel=self.supersample**2,
            seed=self.seed,
            test_ratio=self.test_ratio,
            split_sizes={k: int(len(v)) for k, v in split.items()},
            units=dict(
                fx="px",
                fy="px",
                U0="px",
                V0="px",
                disparity="px (of the world origin)",
                x="m",
                y="m",
                z="m",
                baseline="m",
                pitch="rad (positive: camera tilted down)",
                xworld="m",
                yworld="m",
                zworld="m",
                doffs="px",
                images="uint8 RGB (N, H, W, 3)",
            ),
            meanings=dict(
                x_y_z="t of P = K [R | t]: the world origin (marker foot) in left-camera coordinates",
                xworld_yworld_zworld="left camera centre in the world frame (X right, Y down, Z along the road)",
                disparity="fx * baseline / z - doffs: disparity of the world origin between the rectified views",
                doffs="u0 of the right view minus u0 of the left (Middlebury's doffs); "
                "depth = fx * baseline / (disparity + doffs)",
            ),
            ranges=dataclasses.asdict(self.ranges),
            train_stats=stats,
        )

    def run(self, progress: bool = False) -> dict:
        """Writes everything; returns the meta dict (also written to ``meta.json``)."""
        from numpy.lib.format import open_memmap

        os.makedirs(osp.join(self.out_dir, "splits"), exist_ok=True)
        n, shape = self.num_samples, (self.num_samples, self.height, self.width, 3)
        fields = CVGL_PARAM_FIELDS + CVGL_OPTIONAL_FIELDS
        params = {f: open_memmap(cvgl_path(self.out_dir, f), "w+", np.float64, (n,)) for f in fields}
        images = {f: open_memmap(cvgl_path(self.out_dir, f), "w+", np.uint8, shape) for f in ("left_img", "right_img")}
        split = self.split()
        jobs = [(self.seed, i, self.width, self.height, self.ranges, self.supersample) for i in range(n)]
        start, written = time.time(), 0

        def flush() -> None:
            for array in (*params.values(), *images.values()):
                array.flush()

        bar = ProgressBar(n, file=sys.stdout) if progress else None  # mmengine's: rate, elapsed, ETA
        pool = get_context("fork").Pool(self.workers) if self.workers > 1 else None
        try:
            rows = pool.imap(_render_job, jobs, chunksize=16) if pool else map(_render_job, jobs)
            for i in range(n):
                try:
                    row = next(rows)
                except Exception as err:
                    raise BadSampleError(
                        f"rendering failed: {err!r}", path=cvgl_path(self.out_dir, "left_img"), token=str(i)
                    ) from err
                for field, value in row["params"].items():
                    params[field][i] = value
                images["left_img"][i] = row["left_img"]
                images["right_img"][i] = row["right_img"]
                written = i + 1
                if written % FLUSH_EVERY == 0:
                    flush()
                if bar:
                    bar.update()
        finally:
            if pool:
                pool.terminate()
            if bar:
                sys.stdout.write("\n")
            flush()
            complete = written == n
            for name, rows_ in split.items():
                np.save(split_path(self.out_dir, name), rows_ if complete else rows_[rows_ < written])
            meta = self._meta(written, complete, {f: np.asarray(a) for f, a in params.items()}, split)
            meta["seconds"] = round(time.time() - start, 1)
            with open(osp.join(self.out_dir, "meta.json"), "w") as f:
                json.dump(meta, f, indent=2)
        return meta
