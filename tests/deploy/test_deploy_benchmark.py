"""``tools/benchmark.py deploy``: one row per graph with params, FLOPs, both latencies, their ratio and
peak memory, written as JSON and markdown too (a tiny M3ViT, randomly initialised, exported on the fly)."""

import json

from benchmarks import main
from perception_mtl.testing import config_path

TINY = [
    "test_dataloader.dataset.num_samples=1",
    "test_dataloader.dataset.img_size=32",
    "test_dataloader.num_workers=0",
    "test_dataloader.persistent_workers=False",
    "model.backbone.img_size=32",
    "model.backbone.depth=2",
    "model.backbone.embed_dim=24",
    "model.backbone.out_indices=[0,1]",
    "model.backbone.feature_scales=[2.0,1.0]",
]


def test_deploy_suite_reports_eager_and_onnxruntime(tmp_path):
    out_json, out_md = str(tmp_path / "deploy.json"), str(tmp_path / "deploy.md")
    rows = main(["deploy", str(config_path("m3vit_demo.py")), "--repeats", "1", "--json", out_json,
                 "--markdown", out_md, "--cfg-options", *TINY])  # fmt: skip
    (row,) = rows
    assert row["graph"] == "model" and row["params_M"] > 0 and row["config"] == "m3vit_demo.py"
    assert row["eager_ms"] > 0 and row["ort_ms"] > 0 and row["ort_vs_eager"] == row["ort_ms"] / row["eager_ms"]
    assert row["eager_peak_MB"] >= 0 and row["ort_peak_MB"] >= 0
    assert json.load(open(out_json)) == rows
    assert open(out_md).read().startswith("| graph | params_M |")
