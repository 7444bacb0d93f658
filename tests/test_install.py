"""The installed environment has what the project is built on, at the pinned versions."""

import importlib
import importlib.metadata as md
import pathlib
import re

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


@pytest.mark.parametrize(
    "module",
    ["mmcv.ops", "mmdet3d.models", "mmdet3d.evaluation", "nuscenes", "timm", "onnxruntime", "onnx", "cv2"],
)
def test_imports(module):
    importlib.import_module(module)


@pytest.mark.parametrize("dist", sorted(_pins()))
def test_installed_version_matches_pin(dist):
    assert md.version(dist).split("+")[0] == _pins()[dist]


def test_numpy_is_1x_and_opencv_is_headless():
    import numpy as np

    assert int(np.__version__.split(".")[0]) == 1
    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "opencv-python-headless" in installed
    assert "opencv-python" not in installed  # would shadow the headless cv2
    assert "open3d" not in installed


def test_mmcv_compiled_ops_run_on_cpu():
    """mmcv-lite would import mmcv.ops but have no _ext; run real kernels to be sure."""
    from mmcv.ops import box_iou_rotated, nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    rotated = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0], [1.0, 0.0, 2.0, 2.0, 0.0]])
    iou = box_iou_rotated(rotated, rotated)
    assert iou[0, 1].item() == pytest.approx(2.0 / 6.0, abs=1e-5)


def test_mmcv_was_built_against_this_torch():
    import mmcv

    assert mmcv.__version__ == _pins()["mmcv"]
    key = (ROOT / ".venv" / ".mmcv-key").read_text().strip()
    assert f"torch-{torch.__version__}-" in key
