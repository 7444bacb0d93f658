"""Synthetic faces: a parametric 3D head, a ray-cast renderer with known pose, and a writer of the
RetinaFace ``label.txt`` (+ pose) and AFLW2000 ``.mat`` layouts."""

from .face_renderer import render_face_image
from .head_model import HeadModel, five_from_68
from .synthetic_face_writer import SyntheticFaceWriter, format_label_line, write_aflw2000_mat

__all__ = ["HeadModel", "SyntheticFaceWriter", "five_from_68", "format_label_line", "render_face_image"]
__all__ += ["write_aflw2000_mat"]
