from benchmarks import main
from benchmarks import format_table


def test_format_table_aligns_columns():
    text = format_table([dict(a=1, b=0.5), dict(a=10, b=2.0)])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "b"] and set(lines[1]) == {"-", " "}
    assert lines[3].split() == ["10", "2"]


def test_toy_suite_runs_and_reports_ratios():
    rows = main(["toy_demo", "--batch", "1", "--grid", "16", "--repeats", "1"])
    assert [r["base_channels"] for r in rows] == [8, 16, 32]
    assert rows[0]["step_time_vs_width8"] == 1.0
    assert rows[0]["params"] < rows[1]["params"] < rows[2]["params"]
