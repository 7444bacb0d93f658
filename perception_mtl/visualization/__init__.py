"""Pictures of samples, ground truth and predictions (BEV, cameras, faces, stereo pairs) as BGR arrays / PNGs.

``tools/visualize.py`` (:mod:`.visualize`) writes them for a config's dataset; :class:`VisualizationHook`
writes a few per validation epoch into the work dir.
"""

from .bev_canvas import BEVCanvas, box_centres, box_corners
from .driving_visualizer import DrivingVisualizer
from .face_visualizer import FaceVisualizer
from .panel_grid import compose_panels, panel_origin
from .sample_visualizer import SampleVisualizer, unbatch
from .stereo_visualizer import StereoVisualizer, horizon_row
from .visualization_hook import VisualizationHook

__all__ = [
    "BEVCanvas",
    "DrivingVisualizer",
    "FaceVisualizer",
    "SampleVisualizer",
    "StereoVisualizer",
    "VisualizationHook",
    "box_centres",
    "box_corners",
    "compose_panels",
    "horizon_row",
    "panel_origin",
    "unbatch",
]
