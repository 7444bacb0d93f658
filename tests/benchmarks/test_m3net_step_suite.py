"""The m3net_step suite times every method on the same real batch and reports each row against the summed
loss (the timings themselves are not asserted: machines are noisy)."""

import pytest

from benchmarks import main


def test_rows_are_ratios_to_the_summed_loss(synthetic_root):
    rows = main(["m3net_step", "--data-root", synthetic_root, "--repeats", "1", "--warmup", "0", "--device", "cpu"])
    assert [r["method"] for r in rows] == [
        "sum (OptimWrapper)",
        "EqualWeighting",
        "FULLER imtl_g+mean",
        "FULLER cagrad+mean (the demo's)",
    ]
    assert rows[0]["step_vs_sum"] == pytest.approx(1.0)
    assert all(r["tasks"] == "det+map+occ" and r["step_vs_sum"] > 0 for r in rows)


def test_missing_data_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="nuscenes_infos_train.pkl.*create_data.py synthetic"):
        main(["m3net_step", "--data-root", str(tmp_path), "--device", "cpu"])
