import pytest

from benchmarks import format_table, load_suite, main


def test_format_table_aligns_columns():
    text = format_table([dict(a=1, b=0.5), dict(a=10, b=2.0)])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "b"] and set(lines[1]) == {"-", " "}
    assert lines[3].split() == ["10", "2"]


def test_a_suite_runs_from_its_name_and_reports_ratios():
    rows = main(["grad_balance", "--batch", "1", "--grid", "16", "--repeats", "1", "--warmup", "0", "--only", "DWA"])
    assert [r["method"] for r in rows] == ["sum (OptimWrapper)", "DWA"]
    assert rows[0]["step_vs_sum"] == 1.0 and rows[1]["step_vs_sum"] > 0


def test_unknown_suite_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: .*grad_balance"):
        load_suite("no_such_suite")
