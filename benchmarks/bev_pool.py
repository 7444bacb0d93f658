"""BEV pooling at BEVFusion's size: the LSS cumsum trick, the scatter path and the sparse (CSR) path.

``python tools/benchmark.py bev_pool [--threads 1] [--repeats 3] [--json out.json]``

All three start from what the view transform has, depth probabilities (B*N, D, fH, fW) and context
(B*N, C, fH, fW), plus the geometry's precomputed part, and return the pooled (cells, C) features:

* ``cumsum``: the LSS cumsum trick as LSS runs it: build the (points, C) frustum, drop points outside
  the grid, sort by cell (every call, as LSS and BEVFusion's ``bev_pool`` wrapper do), cumulative sum,
  differences at cell boundaries; backward as LSS's ``QuickCumsum`` (each point reads its cell's gradient).
* ``scatter``: the (points, C) frustum summed by :func:`bev_pool` (``index_add``), today's default.
* ``sparse``: :func:`sparse_bev_pool` over a :class:`SparseBEVPoolPlan` (no frustum tensor).

Geometry: the synthetic nuScenes-like rig (:func:`rig_calibration`, 1600x900 cameras -> 256x704),
BEVFusion's LSS sizes: 6 cameras, 118 depth bins ([1, 60) m by 0.5 m), 32x88 feature maps,
80 channels, a 360x360 grid of 0.3 m cells over +-54 m. Precomputation rows: the cell index of every
frustum point (both the scatter and the sparse path need it per geometry) and the sparse plan built
from it. The per-batch-geometry rows time a fresh random image + BEV augmentation every repetition
(as training sees it): index + plan + forward/backward against the scatter path's index +
forward/backward, and the plan + sparse forward/backward against the scatter forward/backward alone.

Paths are timed round-robin in one process (noise lands on every path alike); medians. On a CPU the
clock is this process's CPU time (``--clock process``, robust to other jobs on a shared machine) with
``--threads`` intra-op threads; on a GPU synchronised wall-clock time. Compare the ratio columns; the
``*_ms`` columns are absolute only on a GPU.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from perception_mtl.models.view_transforms import (
    LSSDepthTransform,
    SparseBEVPoolPlan,
    bev_pool,
    bev_pool_indices,
    sparse_bev_pool,
)
from perception_mtl.testing.rig_calibration import rig_calibration

DESCRIPTION = "BEV pooling at BEVFusion's size: LSS cumsum trick vs scatter vs sparse CSR (ratios in one run)"


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--image-width", type=int, default=1600, help="camera width before augmentation")
    parser.add_argument("--image-hw", type=int, nargs=2, default=[256, 704], help="augmented image (H, W)")
    parser.add_argument("--feat-hw", type=int, nargs=2, default=[32, 88], help="feature map (H, W)")
    parser.add_argument("--dbound", type=float, nargs=3, default=[1.0, 60.0, 0.5], help="depth bins [min, max, step]")
    parser.add_argument("--bound", type=float, nargs=3, default=[-54.0, 54.0, 0.3], help="x, y grid [min, max, step]")
    parser.add_argument("--channels", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per path")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per path first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on a CPU")
    parser.add_argument("--clock", choices=["process", "wall"], default=None, help="default: process (CPU), wall (GPU)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")


class _QuickCumsum(torch.autograd.Function):
    """LSS's QuickCumsum: per-cell sums of cell-sorted rows; backward gives each row its cell's gradient."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, ranks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = feats.cumsum(0)
        last = torch.ones_like(ranks, dtype=torch.bool)
        last[:-1] = ranks[1:] != ranks[:-1]
        totals = feats[last]
        totals = torch.cat([totals[:1], totals[1:] - totals[:-1]])
        # A row's cell: the boundaries strictly before it (LSS: back = cumsum(kept); back[kept] -= 1).
        ctx.save_for_backward(last.long().cumsum(0) - last.long())
        ctx.mark_non_differentiable(ranks)
        return totals, ranks[last]

    @staticmethod
    def backward(ctx, grad_totals, _):
        (cell_of_row,) = ctx.saved_tensors
        return grad_totals[cell_of_row], None


def cumsum_pool(depth: torch.Tensor, context: torch.Tensor, index: torch.Tensor, num_cells: int) -> torch.Tensor:
    """The LSS pooling with the cumsum trick, from (B*N, D, fH, fW) depth and (B*N, C, fH, fW) context."""
    frustum = _frustum(depth, context)
    inside = index < num_cells
    frustum, ranks = frustum[inside], index[inside]
    order = ranks.argsort()
    totals, cells = _QuickCumsum.apply(frustum[order], ranks[order])
    out = frustum.new_zeros(num_cells, frustum.shape[1])
    out[cells] = totals
    return out


def scatter_pool(depth: torch.Tensor, context: torch.Tensor, index: torch.Tensor, num_cells: int) -> torch.Tensor:
    """The view transform's scatter path: the (points, C) frustum summed by :func:`bev_pool`."""
    return bev_pool(_frustum(depth, context), index, num_cells)


def _frustum(depth: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """(B*N*D*fH*fW, C) frustum features in (B, N, D, fH, fW) order, as LSSDepthTransform builds them."""
    channels = context.shape[1]
    return (depth.unsqueeze(1) * context.unsqueeze(2)).permute(0, 2, 3, 4, 1).reshape(-1, channels)


def _timer(device: torch.device, clock: str):
    clock_fn = time.process_time if clock == "process" else time.perf_counter

    def measure(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock_fn()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return clock_fn() - start

    return measure


def _round_robin(calls: dict, repeats: int, warmup: int, measure) -> dict[str, float]:
    """Median seconds of every call, timed in turn ``repeats`` times after ``warmup`` untimed rounds."""
    times = {name: [] for name in calls}
    for round_ in range(warmup + repeats):
        for name, fn in calls.items():
            seconds = measure(fn)
            if round_ >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def run(args) -> list[dict]:
    device = torch.device(args.device)
    clock = args.clock or ("wall" if device.type == "cuda" else "process")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    measure = _timer(device, clock)
    (fh, fw), image_hw = args.feat_hw, tuple(args.image_hw)
    vt = LSSDepthTransform(8, args.channels, args.bound, args.bound, [-10.0, 10.0, 20.0], args.dbound)
    rig = dict(image_width=args.image_width, final_hw=image_hw, resize_lim=(0.38, 0.55))
    calib = rig_calibration(batch=args.batch, **rig).to(device)
    maps, bins = args.batch * calib.num_cams, vt.num_bins
    num_cells = args.batch * vt.grid[0] * vt.grid[1] * vt.grid[2]
    num_pixels = maps * fh * fw

    def index_of(c):
        return bev_pool_indices(vt.frustum_geometry(c, (fh, fw), image_hw), vt.xbound, vt.ybound, vt.zbound)

    def plan_of(index):
        return SparseBEVPoolPlan.from_index(index, num_pixels, fh * fw, num_cells)

    index = index_of(calib)
    plan = plan_of(index)
    gen = torch.Generator().manual_seed(0)
    depth = torch.randn(maps, bins, fh, fw, generator=gen).softmax(1).to(device)
    context = torch.randn(maps, args.channels, fh, fw, generator=gen).to(device)
    grad_out = torch.randn(num_cells, args.channels, generator=gen).to(device)
    pools = {
        "cumsum": lambda d, c, geo: cumsum_pool(d, c, geo, num_cells),
        "scatter": lambda d, c, geo: scatter_pool(d, c, geo, num_cells),
        "sparse": lambda d, c, geo: sparse_bev_pool(d, c, geo),
    }
    geometry = {"cumsum": index, "scatter": index, "sparse": plan}

    # Same numbers from every path (the sparse path's own tests check this exactly; here as a guard).
    with torch.no_grad():
        outputs = {name: pool(depth, context, geometry[name]) for name, pool in pools.items()}
    max_diff = {name: float((out - outputs["scatter"]).abs().max()) for name, out in outputs.items()}
    del outputs

    def forward(name):
        def call():
            with torch.no_grad():
                pools[name](depth, context, geometry[name])

        return call

    def forward_backward(name, geo=None):
        def call():
            d, c = depth.detach().requires_grad_(), context.detach().requires_grad_()
            pools[name](d, c, geometry[name] if geo is None else geo).backward(grad_out)

        return call

    fwd = _round_robin({n: forward(n) for n in pools}, args.repeats, args.warmup, measure)
    both = _round_robin({n: forward_backward(n) for n in pools}, args.repeats, args.warmup, measure)
    pre = _round_robin({"index": lambda: index_of(calib), "plan": lambda: plan_of(index)}, args.repeats, 0, measure)

    # Random image + BEV augmentation: a new geometry every repetition, as in training.
    draws = iter(range(1, 10**6))

    def per_batch(name):
        def call():
            c = rig_calibration(batch=args.batch, seed=next(draws), random_aug=True, **rig).to(device)
            idx = index_of(c)
            forward_backward(name, plan_of(idx) if name == "sparse" else idx)()

        return call

    fresh = _round_robin({n: per_batch(n) for n in ("scatter", "sparse")}, args.repeats, args.warmup, measure)

    size = f"{args.batch}x{calib.num_cams}x{bins}x{fh}x{fw}x{args.channels} -> {vt.grid[1]}x{vt.grid[2]}"
    common = dict(size=size, points=index.numel(), pairs=plan.nnz, clock=clock, threads=torch.get_num_threads())
    rows = []
    for name in pools:
        rows.append(
            dict(
                path=name,
                fwd_ms=1e3 * fwd[name],
                fwd_bwd_ms=1e3 * both[name],
                fwd_vs_cumsum=fwd["cumsum"] / fwd[name],
                fwd_bwd_vs_cumsum=both["cumsum"] / both[name],
                fwd_vs_scatter=fwd["scatter"] / fwd[name],
                fwd_bwd_vs_scatter=both["scatter"] / both[name],
                max_abs_diff_vs_scatter=max_diff[name],
            )
        )
    rows.append(dict(path="precompute: cell index (scatter and sparse)", fwd_ms=1e3 * pre["index"]))
    rows.append(dict(path="precompute: sparse plan from the index", fwd_ms=1e3 * pre["plan"]))
    rows.append(
        dict(
            path="per-batch geometry: sparse plan + fwd/bwd vs scatter fwd/bwd",
            fwd_bwd_ms=1e3 * (pre["plan"] + both["sparse"]),
            fwd_bwd_vs_scatter=both["scatter"] / (pre["plan"] + both["sparse"]),
        )
    )
    rows.append(
        dict(
            path="per-batch geometry, measured: index + plan + fwd/bwd vs index + scatter fwd/bwd",
            fwd_bwd_ms=1e3 * fresh["sparse"],
            fwd_bwd_vs_scatter=fresh["scatter"] / fresh["sparse"],
        )
    )
    print(f"setup: {json.dumps(common)}")
    print(markdown_table(rows))
    print(json.dumps(dict(setup=common, rows=rows)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(setup=common, rows=rows), f, indent=1)
    return rows
