"""The 'moe' benchmark suite: FLOP accounting of dense vs sparse inference, and the expert load table."""

import pytest
import torch

from benchmarks import main
from perception_mtl.testing import config_path

SMALL = ["--img-size", "32", "--patch-size", "8", "--embed-dim", "16", "--depth", "2", "--num-heads", "2"]


def test_cost_table_counts_exactly_the_experts_that_run():
    rows = main(["moe", *SMALL, "--experts", "8", "--top-k", "2", "--repeats", "1", "--task", "depth"])
    by_name = {r["setting"].split(" (")[0]: r for r in rows}
    dense, sparse = by_name["dense all-task"], by_name["sparse all-task"]
    single, vit_all = by_name["sparse single-task depth"], by_name["dense ViT all-task"]
    assert dense["flops_vs_dense_all_task"] == 1.0
    # One MoE layer (block 1), 16 tokens, 3 task passes: the dense mixture runs E=8 experts of
    # 2*D*H multiply-adds plus the (N, E) x (N, E, D) combine; the bucketed path runs k=2.
    n, d, h, e, k, tasks = 16, 16, 16, 8, 2, 3
    expected_gap = tasks * n * (2 * d * h * (e - k) + e * d)
    assert (dense["gflops"] - sparse["gflops"]) * 1e9 == pytest.approx(expected_gap, rel=1e-3)
    assert single["gflops"] < sparse["gflops"] / 2 and single["params_M"] < dense["params_M"]
    assert vit_all["active_params_per_task_M"] == pytest.approx(single["active_params_per_task_M"], rel=0.05)


def test_load_table_of_a_saved_model(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import MODELS

    cfg_path = tmp_path / "tiny_m3vit.py"
    cfg_path.write_text(
        f"_base_ = ['{config_path('m3vit_demo.py')}']\n"
        + "model = dict(backbone=dict(img_size=32, embed_dim=16, depth=2, num_heads=2, out_indices=(0, 1),"
        " feature_scales=(2.0, 1.0), moe_cfg=dict(num_experts=4, top_k=2)))\n"
        + "val_dataloader = dict(batch_size=2, dataset=dict(img_size=32))\n"
    )
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / "tiny.pth")
    rows = main(
        [
            "moe",
            "--table",
            "load",
            "--config",
            str(cfg_path),
            "--checkpoint",
            str(tmp_path / "tiny.pth"),
            "--num-samples",
            "3",
        ]
    )
    assert [(r["layer"], r["task"]) for r in rows] == [("blocks.1", t) for t in ("seg", "depth", "edge")]
    for row in rows:
        shares = [row[f"e{i}"] for i in range(4)]
        assert sum(shares) == pytest.approx(100.0) and 0.0 < row["entropy"] <= 1.0
        assert 1 <= row["n90"] <= row["n99"] <= 4
        assert 0.0 <= row["zero_act"] <= 1.0
    with pytest.raises(ValueError, match="--config"):
        main(["moe", "--table", "load"])
