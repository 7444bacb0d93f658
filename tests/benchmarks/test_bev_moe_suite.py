"""The bev_moe benchmark suite: rows for the TCS model, the MoE model and each extracted single-task model,
with FLOPs that follow the routing (an extracted task's experts cost k/E of the all-expert pass)."""

import pytest

from benchmarks import main


@pytest.mark.slow
def test_bev_moe_rows_and_the_k_over_e_expert_target(synthetic_root):
    rows = main(["bev_moe", "--data-root", synthetic_root, "--repeats", "1"])
    names = [r["setting"] for r in rows]
    assert names[:3] == ["TCS (shared decoder pass)", "MoE all experts (dense)", "MoE top-k"]
    assert names[3:] == [f"MoE extracted {t}" for t in ("det", "map", "occ")]
    tcs, dense, topk, *singles = rows
    assert tcs["expert_mflops"] == 0 and dense["expert_mflops"] > topk["expert_mflops"] > 0
    assert dense["decoder_gflops"] > topk["decoder_gflops"] > 0
    for row in singles:
        assert row["met"] and 0.2 < row["expert_vs_all_expert"] <= 0.25  # k/E = 2/8
        assert row["params_M"] < topk["params_M"] and row["gflops"] < topk["gflops"]
