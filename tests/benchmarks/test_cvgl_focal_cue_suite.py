"""The 'cvgl_focal_cue' suite: the dash-period ruler on the ground plane."""

import math

import pytest
import torch

from benchmarks import main
from benchmarks.cvgl_focal_cue import dash_period_ratio
from perception_mtl.apis.create_data import main as create_data


def _dashed_columns(scale: float, step: float = 0.125, rows: int = 224, seed: int = 0) -> torch.Tensor:
    """(rows, 6): two columns of 3 m dashes every 9 m stretched by ``scale`` (random phases) and four of noise."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.arange(rows) * step
    cols = [((z / scale + torch.rand(1, generator=gen) * 9.0) % 9.0 < 3.0).float() for _ in range(2)]
    cols += [torch.rand(rows, generator=gen) * 0.2 for _ in range(4)]
    return torch.stack(cols, 1)


@pytest.mark.parametrize("scale", [0.9, 1.0, 1.12])
def test_period_of_stretched_dashes(scale):
    view = _dashed_columns(scale)[None]
    ratio = dash_period_ratio(view, torch.ones_like(view, dtype=torch.bool), 0.125, 9.0, (6.25, 15.0))
    assert ratio.item() == pytest.approx(scale, abs=0.01)


def test_only_valid_cells_count_and_no_view_gives_nan():
    view = _dashed_columns(1.05)[None]
    valid = torch.ones_like(view, dtype=torch.bool)
    garbage = view.clone()
    garbage[:, :40] = torch.rand(40, 6) * 5  # cells outside the image hold anything
    valid[:, :40] = False
    ratio = dash_period_ratio(garbage, valid, 0.125, 9.0, (6.25, 15.0))
    assert ratio.item() == pytest.approx(1.05, abs=0.015)
    assert math.isnan(dash_period_ratio(view, torch.zeros_like(valid), 0.125, 9.0, (6.25, 15.0)).item())


def test_table_on_rendered_pairs_recovers_f_and_degrades_with_the_horizon(tmp_path):
    root = str(tmp_path / "cvgl")
    create_data(["cvgl", "--out-dir", root, "--num-samples", "30", "--width", "256", "--height", "192",
                 "--test-ratio", "0.8", "--workers", "1"])  # fmt: skip
    rows = main(["cvgl_focal_cue", "--data-root", root, "--num-samples", "24", "--horizon-noise-px", "0", "3"])
    exact, off = rows
    assert exact["samples"] == 24 and exact["image"] == "256x192"
    # With the true horizon the dashes correct a 6 % focal error (to ~2 % at this size) ...
    assert exact["found"] > 0.9 and exact["median_error_pct"] < 0.7 * exact["f_est_error_pct"]
    # ... a 3 px horizon error bends the road and the ruler fails.
    assert off["median_error_pct"] > 1.5 * exact["median_error_pct"]


def test_empty_split_is_an_error(tmp_path):
    root = str(tmp_path / "cvgl")
    create_data(["cvgl", "--out-dir", root, "--num-samples", "4", "--workers", "1"])
    with pytest.raises(ValueError, match="no samples"):
        main(["cvgl_focal_cue", "--data-root", root, "--num-samples", "0"])
