"""The bev_pool benchmark suite: every path pools to the same numbers, the cumsum baseline's gradients are the
scatter path's, and each ratio is computed from its own row's timings (timings themselves are not asserted)."""

import pytest
import torch

from benchmarks import main
from benchmarks.bev_pool import cumsum_pool, scatter_pool

TINY = ["--image-width", "400", "--image-hw", "64", "176", "--feat-hw", "4", "11", "--dbound", "1", "60", "2"]
TINY += ["--bound", "-51.2", "51.2", "3.2", "--channels", "8", "--repeats", "1", "--warmup", "0"]


def test_cumsum_baseline_matches_the_scatter_path_forward_and_backward():
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 9, (3 * 5 * 6,), generator=gen)  # 8 cells + outside
    depth = torch.rand(3, 5, 2, 3, generator=gen, dtype=torch.float64)
    context = torch.randn(3, 4, 2, 3, generator=gen, dtype=torch.float64)
    weight = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    results = []
    for pool in (cumsum_pool, scatter_pool):
        d, c = depth.clone().requires_grad_(), context.clone().requires_grad_()
        out = pool(d, c, index, 8)
        results.append((out, *torch.autograd.grad((out * weight).sum(), (d, c))))
    for got, expected in zip(*results):
        assert torch.allclose(got, expected, atol=1e-12)


def test_suite_reports_every_path_precompute_and_per_batch_geometry(capsys):
    rows = main(["bev_pool", *TINY])
    paths = {row["path"]: row for row in rows}
    for name in ("cumsum", "scatter", "sparse"):
        row = paths[name]
        assert row["fwd_vs_cumsum"] == pytest.approx(paths["cumsum"]["fwd_ms"] / row["fwd_ms"])
        assert row["fwd_bwd_vs_scatter"] == pytest.approx(paths["scatter"]["fwd_bwd_ms"] / row["fwd_bwd_ms"])
        assert row["max_abs_diff_vs_scatter"] < 1e-4
    assert any(p.startswith("precompute: sparse plan") for p in paths)
    assert any(p.startswith("per-batch geometry, measured") for p in paths)
    out = capsys.readouterr().out
    assert "| path |" in out and '"setup"' in out  # markdown table and JSON
