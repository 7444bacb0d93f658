"""The bev_detection benchmark suite runs and reports the pooling ratio."""

from perception_mtl.apis.benchmark import main


def test_pooling_rows_report_cumsum_over_scatter():
    rows = main(["bev_detection", "--no-models", "--pool-size", "demo", "--repeats", "1", "--device", "cpu"])
    assert len(rows) == 1 and rows[0]["part"] == "bev_pool" and rows[0]["points"] == 6 * 59 * 8 * 22
    assert rows[0]["cumsum_over_scatter_fwd"] > 0 and rows[0]["scatter_fwd_ms"] > 0
