"""The bev_detection benchmark suite runs and reports the pooling and head ratios."""

from benchmarks import main
from benchmarks.bev_detection import head_rows


def test_pooling_rows_report_cumsum_over_scatter():
    rows = main(["bev_detection", "--no-models", "--pool-size", "demo", "--repeats", "1", "--device", "cpu"])
    assert len(rows) == 1 and rows[0]["part"] == "bev_pool" and rows[0]["points"] == 6 * 59 * 8 * 22
    assert rows[0]["cumsum_over_scatter_fwd"] > 0 and rows[0]["scatter_fwd_ms"] > 0


def test_head_rows_time_both_branch_layouts():
    (row,) = head_rows(repeats=1, device="cpu")
    assert row["part"] == "det_head_fwd_bwd" and row["size"] == "2x64x128x128"
    assert row["separate_fwd_bwd_ms"] > 0 and row["packed_fwd_bwd_ms"] > 0 and row["separate_over_packed"] > 0
