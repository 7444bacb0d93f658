"""The bev_detection benchmark suite times both pooling paths and both head layouts on the same inputs and
reports each ratio from its own row's timings (the timings themselves are not asserted: machines are noisy)."""

import pytest

from benchmarks import main
from benchmarks.bev_detection import head_rows


def test_pooling_row_reports_each_path_and_their_ratio():
    rows = main(["bev_detection", "--no-models", "--pool-size", "demo", "--repeats", "1", "--device", "cpu"])
    assert len(rows) == 1 and rows[0]["part"] == "bev_pool" and rows[0]["points"] == 6 * 59 * 8 * 22
    row = rows[0]
    for path in ("scatter", "cumsum"):
        assert {f"{path}_fwd_ms", f"{path}_fwd_bwd_ms"} <= set(row), row
    assert row["cumsum_over_scatter_fwd"] == pytest.approx(row["cumsum_fwd_ms"] / row["scatter_fwd_ms"])
    assert row["cumsum_over_scatter_fwd_bwd"] == pytest.approx(row["cumsum_fwd_bwd_ms"] / row["scatter_fwd_bwd_ms"])


def test_head_row_times_both_branch_layouts_of_the_demo_head():
    (row,) = head_rows(repeats=1, device="cpu")
    assert row["part"] == "det_head_fwd_bwd" and row["size"] == "2x64x128x128"
    assert row["separate_over_packed"] == pytest.approx(row["separate_fwd_bwd_ms"] / row["packed_fwd_bwd_ms"])


def test_train_step_rows_time_each_pool_path_under_both_geometry_regimes(synthetic_root):
    args = ["bev_detection", "--only-train-step", "--bev-pool", "scatter", "sparse", "--data-root", synthetic_root]
    rows = main([*args, "--batch", "1", "--repeats", "1", "--warmup", "1", "--device", "cpu"])
    assert [(r["size"], r["path"]) for r in rows] == [
        ("camera, fixed geometry", "scatter"),
        ("camera, fixed geometry", "sparse"),
        ("camera, new geometry every step", "scatter"),
        ("camera, new geometry every step", "sparse"),
    ]
    scatter, sparse, scatter_new, sparse_new = rows
    assert sparse["step_vs_scatter"] == pytest.approx(sparse["step_ms"] / scatter["step_ms"])
    # The sparse plan is built once for a re-used batch, and every step when the augmentation changes.
    assert (sparse["plan_builds"], sparse_new["plan_builds"]) == (1, 2)
    assert scatter["plan_builds"] == scatter_new["plan_builds"] == 0
