"""Writes the synthetic face dataset in the RetinaFace / WIDER FACE ``label.txt`` layout (+ pose) and
the AFLW2000 ``.mat`` layout.

Layout under ``out_dir``::

    train/label.txt, train/images/000000.jpg ...   (detection + landmarks + pose, several faces per image)
    val/label.txt,   val/images/...                 (same, disjoint seeds)
    pose_eval/image00000.jpg + image00000.mat ...   (AFLW2000-style: one face per image, Pose_Para, pt3d_68)
    meta.json                                       (generator settings and counts)

``label.txt``: a ``# images/<name>.jpg`` line per image, then one line per face:
``x y w h`` (top-left corner and size in pixels), five ``lx ly flag`` triples (left eye, right
eye, nose, left mouth, right mouth; flag 1.0 = self-occluded, 0.0 = visible), the RetinaFace
blur/score column (1.0 here), then ``yaw pitch roll`` in degrees. The ``.mat`` files hold
``Pose_Para`` (1, 7) = [pitch, yaw, roll (radians), tx, ty, tz, scale] and ``pt3d_68`` (3, 68)
(x, y image pixels, then height toward the viewer in pixels, i.e. minus the depth), as AFLW2000.
All angles are in the convention of :mod:`perception_mtl.structures.head_pose`, which is the one of
AFLW2000 / 300W-LP (positive pitch = nose up), so the files' angles are the rendered head's; tx, ty
are the landmarks' centroid in image pixels (y down), not 3DDFA's y-up translation.

Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed, s_id, i])``: splits
never share a random stream, and the same settings write the same files. Each image and its
label lines are written (and flushed) before the next image is drawn, so an error part-way
leaves every earlier sample complete on disk.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np
import scipy.io
from mmengine.utils import ProgressBar

from perception_mtl.structures.head_pose import pose_to_pose_para

from .face_renderer import render_face_image

SPLIT_IDS = {"train": 0, "val": 1, "pose_eval": 2}


def format_label_line(face: dict) -> str:
    """One ``label.txt`` face line (see the module docstring)."""
    x1, y1, x2, y2 = face["box"]
    values = [x1, y1, x2 - x1, y2 - y1]
    for (x, y), flag in zip(face["landmarks"], face["flags"]):
        values += [x, y, flag]
    values += [1.0, *face["pose"]]
    return " ".join(f"{v:.3f}" for v in values)


def write_aflw2000_mat(path: str, pose: np.ndarray, landmarks68: np.ndarray, scale: float) -> None:
    """AFLW2000-style ``.mat``: ``Pose_Para`` [pitch, yaw, roll (rad), tx, ty, tz, scale], ``pt3d_68`` (3, 68).

    Args:
        pose: (3,) (yaw, pitch, roll) degrees. landmarks68: (68, 3) camera-frame pixels (x, y image, z depth).
        scale: pixels per head unit.
    """
    centre = landmarks68.mean(0)
    pose_para = np.concatenate([pose_to_pose_para(pose), [centre[0], centre[1], 0.0, scale]])[None]
    pt3d = landmarks68.astype(np.float64) * [1.0, 1.0, -1.0]  # AFLW2000's z points toward the viewer
    scipy.io.savemat(path, {"Pose_Para": pose_para, "pt3d_68": pt3d.T})


class SyntheticFaceWriter:
    """Generates and writes the splits.

    Args:
        out_dir: dataset root to create.
        num_train / num_val / num_pose_eval: images per split.
        img_size: square image side in pixels.
        max_faces: faces per detection image (1..max_faces).
        min_face: smallest face height in pixels.
        seed: base seed.
        jpeg_quality: JPEG quality of the images.
    """

    def __init__(
        self,
        out_dir: str,
        num_train: int = 2000,
        num_val: int = 200,
        num_pose_eval: int = 100,
        img_size: int = 192,
        max_faces: int = 6,
        min_face: float = 12.0,
        seed: int = 0,
        jpeg_quality: int = 92,
    ) -> None:
        if min(num_train, num_val, num_pose_eval) < 0 or img_size < 32 or max_faces < 1:
            raise ValueError(
                f"SyntheticFaceWriter: need counts >= 0, img_size >= 32, max_faces >= 1; got "
                f"{num_train}, {num_val}, {num_pose_eval}, {img_size}, {max_faces}"
            )
        self.out_dir = out_dir
        self.counts = dict(train=num_train, val=num_val, pose_eval=num_pose_eval)
        self.img_size, self.max_faces, self.min_face = int(img_size), int(max_faces), float(min_face)
        self.seed, self.jpeg_quality = int(seed), int(jpeg_quality)
        self._bar: ProgressBar | None = None

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def rng(self, split: str, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLIT_IDS[split], index])

    def write_detection_split(self, split: str) -> int:
        """Writes ``<split>/label.txt`` and its images; returns the number of faces."""
        os.makedirs(osp.join(self.out_dir, split, "images"), exist_ok=True)
        num_faces = 0
        with open(osp.join(self.out_dir, split, "label.txt"), "w") as label:
            for index in range(self.counts[split]):
                img, faces = render_face_image(self.rng(split, index), self.img_size, self.max_faces, self.min_face)
                name = f"images/{index:06d}.jpg"
                cv2.imwrite(osp.join(self.out_dir, split, name), img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                label.write(f"# {name}\n" + "".join(format_label_line(f) + "\n" for f in faces))
                label.flush()
                num_faces += len(faces)
                self._tick()
        return num_faces

    def write_pose_eval_split(self) -> int:
        """Writes AFLW2000-style image/.mat pairs (one face per image, 40-60% of the image tall)."""
        folder = osp.join(self.out_dir, "pose_eval")
        os.makedirs(folder, exist_ok=True)
        for index in range(self.counts["pose_eval"]):
            rng = self.rng("pose_eval", index)
            img, faces = render_face_image(rng, self.img_size, max_faces=1, min_face=0.4 * self.img_size)
            stem = osp.join(folder, f"image{index:05d}")
            cv2.imwrite(stem + ".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            face = faces[0]
            write_aflw2000_mat(stem + ".mat", face["pose"], face["landmarks68"], (face["box"][3] - face["box"][1]) / 2)
            self._tick()
        return self.counts["pose_eval"]

    def run(self, progress: bool = False) -> dict:
        """Writes every split; ``progress`` shows a progress bar (mmengine's, with ETA) over the images on stdout.
        Returns the summary (also written to ``meta.json``)."""
        start = time.perf_counter()
        self._bar = ProgressBar(sum(self.counts.values()), file=sys.stdout) if progress else None
        summary = dict(out_dir=self.out_dir, img_size=self.img_size, seed=self.seed, images=dict(self.counts))
        summary["faces"] = {s: self.write_detection_split(s) for s in ("train", "val") if self.counts[s]}
        if self.counts["pose_eval"]:
            self.write_pose_eval_split()
        if self._bar is not None:
            sys.stdout.write("\n")
            self._bar = None
        summary["seconds"] = round(time.perf_counter() - start, 1)
        with open(osp.join(self.out_dir, "meta.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return summary
