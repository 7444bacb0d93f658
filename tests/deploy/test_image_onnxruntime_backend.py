"""``tools/test.py --backend onnxruntime`` for image models: the exported graph, decoded by the model's own
heads, gives the PyTorch backend's metrics (M3ViT and MOS demos, randomly initialised, tiny test sets)."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.deploy.export import export, sample_batches
from perception_mtl.deploy.ort_runner import ORTImageRunner
from perception_mtl.testing import config_path, random_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[2]
M3VIT_TINY = {
    "test_dataloader.dataset.num_samples": 4,
    "test_dataloader.dataset.img_size": 32,
    "model.backbone.img_size": 32,
    "model.backbone.depth": 2,
    "model.backbone.embed_dim": 24,
    "model.backbone.out_indices": [0, 1],
    "model.backbone.feature_scales": [2.0, 1.0],
}


def _as_cli(options: dict) -> list[str]:
    return [f"{k}={json.dumps(v).replace(' ', '')}" if isinstance(v, list) else f"{k}={v}" for k, v in options.items()]


def _test(config, options, work, *extra) -> dict:
    done = subprocess.run(
        [sys.executable, "tools/test.py", config, *extra, "--work-dir", work, "--cfg-options", *_as_cli(options)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((pathlib.Path(work) / "test_metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["m3vit_demo.py", "mos_face_pose_demo.py"])
def test_onnxruntime_backend_gives_the_pytorch_metrics(tmp_path, name):
    options = {"test_dataloader.num_workers": 0, "test_dataloader.persistent_workers": False}
    if name.startswith("m3vit"):
        options.update(M3VIT_TINY)
    else:
        data = str(tmp_path / "faces")
        create_data(["faces", "--out-dir", data, "--num-train", "1", "--num-val", "3", "--num-pose-eval", "0"])
        options["test_dataloader.dataset.data_root"] = data
        options["model.head.score_thr"] = 0.001  # random weights score faces at ~0.01: keep some detections
    config = str(config_path(name))
    checkpoint = str(tmp_path / "random.pth")
    cfg, model = random_checkpoint(config, checkpoint, options)
    out = str(tmp_path / "onnx")
    export(config, checkpoint, out, cfg_options=options)
    ref = _test(config, options, str(tmp_path / "pt"), checkpoint)
    got = _test(config, options, str(tmp_path / "ort"), "--backend", "onnxruntime", "--onnx-dir", out)
    assert set(got) == set(ref) and ref
    for key, value in ref.items():
        if isinstance(value, float):
            assert abs(got[key] - value) <= 0.005 * max(1.0, abs(value)), (key, got[key], value)
    if name.startswith("mos"):  # random weights find no face: compare the decoded predictions themselves
        batch = sample_batches(cfg, [0, 1])[0]
        data = model.eval().data_preprocessor(batch, False)
        with torch.no_grad():
            expected = model(data["inputs"], data["data_samples"], mode="predict")
        runner = ORTImageRunner(model, out, cfg)
        data = model.data_preprocessor(sample_batches(cfg, [0, 1])[0], False)
        for a, b in zip(expected, runner.predict(data["inputs"], data["data_samples"])):
            pa, pb = a.pred_instances, b.pred_instances
            assert len(pa.scores) > 0 and len(pa.scores) == len(pb.scores)
            torch.testing.assert_close(pb.scores, pa.scores, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(pb.bboxes, pa.bboxes, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_ugcl_runner_decodes_like_pytorch_without_test_time_views(tmp_path):
    data_root = str(tmp_path / "cvgl")
    create_data(["cvgl", "--out-dir", data_root, "--num-samples", "10", "--workers", "1"])
    options = {
        "test_dataloader.num_workers": 0,
        "test_dataloader.persistent_workers": False,
        "test_dataloader.dataset.data_root": data_root,
    }
    config = str(config_path("ugcl_calib_demo.py"))
    checkpoint = str(tmp_path / "random.pth")
    cfg, model = random_checkpoint(config, checkpoint, options)
    out = str(tmp_path / "onnx")
    export(config, checkpoint, out, cfg_options=options)
    model.eval()
    with pytest.raises(NotImplementedError, match="test_flip / test_shifts"):
        ORTImageRunner(model, out, cfg)
    model.test_flip, model.test_shifts = False, ()
    runner = ORTImageRunner(model, out, cfg)
    data = model.data_preprocessor(sample_batches(cfg, [0, 1], batch_size=2)[0], False)
    with torch.no_grad():
        expected = model(data["inputs"], data["data_samples"], mode="predict")
    got = runner.predict(data["inputs"], [type(s)(metainfo=s.metainfo) for s in data["data_samples"]])
    for a, b in zip(expected, got):
        torch.testing.assert_close(b.pred_calib, a.pred_calib, rtol=1e-4, atol=1e-4)
