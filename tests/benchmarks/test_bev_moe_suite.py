"""The bev_moe benchmark suite: rows for the TCS model, the MoE model and each extracted single-task model,
with FLOPs that follow the routing (an extracted task's experts cost k/E of the all-expert pass)."""

import pytest

from benchmarks import main


@pytest.mark.slow
def test_bev_moe_rows_and_the_k_over_e_expert_target(synthetic_root):
    rows = main(["bev_moe", "--data-root", synthetic_root, "--repeats", "1", "--train-repeats", "1"])
    names = [r["setting"] for r in rows]
    assert names[:3] == ["TCS (shared decoder pass)", "MoE all experts (dense)", "MoE top-k"]
    assert names[3:6] == [f"MoE extracted {t}" for t in ("det", "map", "occ")]
    assert names[6:] == ["TCS train step", "MoE top-k train step"]
    tcs, dense, topk, *singles = rows[:6]
    # The MoE decoder runs once per task and adds experts: its training step costs more than the TCS model's.
    assert rows[6]["train_step_vs_tcs"] == 1.0 and rows[7]["train_step_vs_tcs"] > 1.0
    assert tcs["expert_mflops"] == 0 and dense["expert_mflops"] > topk["expert_mflops"] > 0
    assert dense["decoder_gflops"] > topk["decoder_gflops"] > 0
    for row in singles:
        assert row["met"] and 0.2 < row["expert_vs_all_expert"] <= 0.25  # k/E = 2/8
        assert row["params_M"] < topk["params_M"] and row["gflops"] < topk["gflops"]
