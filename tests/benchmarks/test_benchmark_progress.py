"""Benchmark suites show progress on stderr (mmengine's bar), so the table on stdout stays clean."""

import re

from benchmarks import main, track


def test_track_yields_every_item_and_reports_on_stderr(capsys):
    assert list(track(range(3), "three things")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "three things" in captured.err and re.search(r"\] 3/3, [\d.]+ task/s, elapsed: \d+s", captured.err)


def test_a_suite_shows_its_timed_rounds(capsys):
    main(["grad_balance", "--batch", "1", "--grid", "16", "--repeats", "2", "--warmup", "0", "--only", "DWA"])
    captured = capsys.readouterr()
    assert "grad_balance: 2 timed rounds of 2 methods" in captured.err and re.search(r"\] 2/2, ", captured.err)
    assert "task/s" not in captured.out and "step_vs_sum" in captured.out
