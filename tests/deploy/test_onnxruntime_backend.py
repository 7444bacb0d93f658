"""End to end on the generated synthetic nuScenes (slow): the M3Net demo config exported with
``tools/export_onnx.py``, ``--verify`` on real samples, and ``tools/test.py --backend onnxruntime`` giving
the PyTorch backend's metrics; a foreign config is refused by name."""

import json
import pathlib
import subprocess
import sys

import pytest
from mmengine.config import Config

from perception_mtl.apis.export import main as export_main
from perception_mtl.testing import config_path, on_data_root, random_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADLINE = ("nuscenes_det/mAP", "nuscenes_det/NDS", "map/mIoU", "occ/mIoU")


def _tiny_config(root: str, path: str) -> str:
    """The M3Net demo config on the session's synthetic data, written as a standalone config file."""
    cfg = on_data_root(Config.fromfile(str(config_path("m3net_nuscenes_demo.py"))), root)
    cfg.dump(path)
    return path


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory, synthetic_root):
    tmp = tmp_path_factory.mktemp("onnx_demo")
    config = _tiny_config(synthetic_root, str(tmp / "m3net_tiny.py"))
    checkpoint = str(tmp / "random.pth")
    random_checkpoint(config, checkpoint)
    out_dir = str(tmp / "onnx")
    manifest = export_main([config, checkpoint, "--out-dir", out_dir, "--verify", "--verify-samples", "2"])
    return config, checkpoint, out_dir, manifest, tmp


def test_export_writes_manifest_and_verifies_on_real_samples(demo_export):
    config, checkpoint, out_dir, manifest, _ = demo_export
    assert set(manifest["graphs"]) == {"camera_encoder", "lidar_encoder", "bev_heads"}
    assert manifest["tasks"] == ["det", "map", "occ"] and manifest["config"]["path"] == config
    assert len(manifest["checkpoint"]["sha256"]) == 64
    assert all(g["tensorrt10"]["ok"] for g in manifest["graphs"].values())
    on_disk = json.loads((pathlib.Path(out_dir) / "manifest.json").read_text())
    lidar2ego = {"name": "lidar2ego", "shape": ["batch", 4, 4], "dtype": "float32"}
    assert on_disk["graphs"]["bev_heads"]["inputs"][-1] == lidar2ego
    diffs = manifest["verify"]
    assert {"camera_encoder/camera_bev", "lidar_encoder/lidar_bev", "chain/occ.logits", "chain/map.logits"} <= set(
        diffs
    )
    worst = max(diffs, key=lambda k: diffs[k]["max_abs_diff"])
    assert diffs[worst]["max_abs_diff"] < 1e-4, (worst, diffs[worst])


def test_onnxruntime_backend_gives_the_pytorch_metrics(demo_export):
    config, checkpoint, out_dir, _, tmp = demo_export
    torch_dir, ort_dir = str(tmp / "test_pytorch"), str(tmp / "test_ort")
    done = _run("tools/test.py", config, checkpoint, "--work-dir", torch_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run("tools/test.py", config, "--backend", "onnxruntime", "--onnx-dir", out_dir, "--work-dir", ort_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = json.loads((pathlib.Path(torch_dir) / "test_metrics.json").read_text())
    got = json.loads((pathlib.Path(ort_dir) / "test_metrics.json").read_text())
    assert set(got) == set(ref)
    for key in HEADLINE:
        assert abs(got[key] - ref[key]) <= 0.005, (key, got[key], ref[key])


def test_onnxruntime_backend_refuses_another_configs_export(demo_export):
    _, _, out_dir, _, tmp = demo_export
    other = str(config_path("bevfusion_fusion_demo.py"))
    done = _run("tools/test.py", other, "--backend", "onnxruntime", "--onnx-dir", out_dir, "--work-dir", str(tmp / "x"))
    assert done.returncode != 0 and "builds a different model than this config" in done.stderr
