"""Synthetic road stereo pairs with known K, baseline, pitch and translation, written in the CVGL layout."""

from .road_stereo_renderer import RigParams, RigRanges, render_stereo_pair, render_view, sample_rig, sample_scene
from .synthetic_cvgl_writer import SyntheticCVGLWriter, render_sample

__all__ = ["RigParams", "RigRanges", "SyntheticCVGLWriter", "render_sample", "render_stereo_pair", "render_view"]
__all__ += ["sample_rig", "sample_scene"]
