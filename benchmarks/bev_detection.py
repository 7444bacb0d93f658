"""BEV detection costs: BEV pooling (scatter) vs the LSS cumsum trick, the detection head's training
step with mmdet3d's SeparateHead vs our PackedSeparateHead, and model forward latency and memory per
modality setting (camera, LiDAR, fused) at demo size.

``python tools/benchmark.py bev_detection [--device cuda] [--pool-size full] [--repeats 10]``

The camera view transform's pooling path (``--bev-pool scatter sparse cumsum``, default scatter) is an
option: the model-forward rows run once per path, and ``--train-step`` adds the demo's training step
(forward, losses, backward, AdamW) per path on real batches of the synthetic nuScenes-format data, with
one batch re-used (fixed geometry: the sparse plan is cached) and a fresh batch every step (the
pipeline's random image + BEV augmentation: a new plan every step). ``--only-train-step`` skips the rest:

``python tools/benchmark.py bev_detection --only-train-step --bev-pool scatter sparse --repeats 3``

Times are medians after warm-up. On a CPU, compare the ratio columns within one run (shared machines
are noisy); absolute times are meaningful on a GPU. Peak memory: ``torch.cuda.max_memory_allocated``
on a GPU; on a CPU the peak resident set size of a fresh process per setting (includes the libraries).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import torch

from perception_mtl.models.view_transforms import bev_pool, bev_pool_cumsum, bev_pool_indices

from . import track, train_step_timer

DESCRIPTION = (
    "BEV pooling vs LSS cumsum trick (ratio); CenterHead step, separate vs packed branches (ratio); "
    "model forward latency/memory per modality at demo size"
)

# (batch, cameras, depth bins, feature H, W, channels, BEV bound): demo size and BEVFusion's 256x704 size.
POOL_SIZES = {
    "demo": (1, 6, 59, 8, 22, 24, [-51.2, 51.2, 0.8]),
    "full": (1, 6, 118, 32, 88, 80, [-54.0, 54.0, 0.3]),
}
DEMO_CONFIGS = {
    "camera": "configs/bevfusion/bevfusion_camera_demo.py",
    "lidar": "configs/bevfusion/bevfusion_lidar_demo.py",
    "fused": "configs/bevfusion/bevfusion_fusion_demo.py",
}


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pool-size", choices=sorted(POOL_SIZES), nargs="+", default=["demo", "full"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", type=int, default=125_000, help="LiDAR points per sample (key frame + sweeps)")
    parser.add_argument("--no-models", action="store_true", help="only the pooling comparison")
    parser.add_argument("--bev-pool", nargs="+", default=["scatter"], choices=["scatter", "sparse", "cumsum"],
                        help="camera view transform pooling path(s) of the model rows")  # fmt: skip
    parser.add_argument("--train-step", action="store_true", help="add the demo training step per --bev-pool path")
    parser.add_argument("--only-train-step", action="store_true", help="only the training-step rows")
    parser.add_argument("--train-settings", nargs="+", default=["camera"], choices=["camera", "fused"])
    parser.add_argument("--data-root", default="data/synthetic_nuscenes", help="synthetic nuScenes-format data")
    parser.add_argument("--batch", type=int, default=2, help="samples per training step (the demo's batch)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps per path first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the training step (CPU)")


def _median_seconds(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats + 2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def pooling_rows(sizes: list[str], repeats: int, device: str) -> list[dict]:
    rows = []
    for name in sizes:
        batch, cams, bins, fh, fw, channels, bound = POOL_SIZES[name]
        gen = torch.Generator().manual_seed(0)
        # Frustum-like geometry: points spread over the grid and 20% beyond it.
        span = 1.2 * bound[1]
        points = (torch.rand(batch, cams * bins * fh * fw, 3, generator=gen) * 2 - 1) * span
        points[..., 2] = points[..., 2] / span * 5
        index = bev_pool_indices(points, bound, bound, [-10.0, 10.0, 20.0]).to(device)
        cells = int(round((bound[1] - bound[0]) / bound[2])) ** 2 * batch
        feats = torch.randn(index.numel(), channels, generator=gen).to(device).requires_grad_(True)
        row = dict(part="bev_pool", size=name, points=index.numel(), channels=channels)
        for label, pool in (("scatter", bev_pool), ("cumsum", bev_pool_cumsum)):

            def forward(pool=pool, feats=feats, index=index, cells=cells):
                return pool(feats.detach(), index, cells)

            def forward_backward(pool=pool, feats=feats, index=index, cells=cells):
                pool(feats, index, cells).sum().backward()

            fwd = _median_seconds(forward, repeats, device)
            both = _median_seconds(forward_backward, repeats, device)
            row[f"{label}_fwd_ms"] = 1e3 * fwd
            row[f"{label}_fwd_bwd_ms"] = 1e3 * both
        row["cumsum_over_scatter_fwd"] = row["cumsum_fwd_ms"] / row["scatter_fwd_ms"]
        row["cumsum_over_scatter_fwd_bwd"] = row["cumsum_fwd_bwd_ms"] / row["scatter_fwd_bwd_ms"]
        rows.append(row)
    return rows


def head_rows(repeats: int, device: str) -> list[dict]:
    """Forward + backward of the fused demo's CenterDetHead (six class groups) on a random BEV map of
    the demo grid, with mmdet3d's SeparateHead branches and with PackedSeparateHead (same maths)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import MODELS

    init_default_scope("perception_mtl")
    cfg = Config.fromfile(DEMO_CONFIGS["fused"]).model.heads.det
    grid_x, grid_y = cfg.train_cfg.grid_size[:2]
    feat = torch.randn(2, cfg.in_channels, grid_y, grid_x, generator=torch.Generator().manual_seed(0)).to(device)
    row = dict(part="det_head_fwd_bwd", size=f"2x{cfg.in_channels}x{grid_y}x{grid_x}")
    for label, head_type in (("separate", "mmdet3d.SeparateHead"), ("packed", "perception_mtl.PackedSeparateHead")):
        cfg.separate_head.type = head_type
        head = MODELS.build(cfg).to(device).train()

        def step(head=head):
            outs = head(feat)
            sum(value.sum() for (group,) in outs for value in group.values()).backward()

        row[f"{label}_fwd_bwd_ms"] = 1e3 * _median_seconds(step, repeats, device)
    row["separate_over_packed"] = row["separate_fwd_bwd_ms"] / row["packed_fwd_bwd_ms"]
    return [row]


def _demo_batch(batch: int, num_points: int, image_hw=(64, 176), seed: int = 0) -> dict:
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

    from perception_mtl.structures import SensorCalibration

    gen = torch.Generator().manual_seed(seed)
    h, w = image_hw
    cam2img = torch.tensor([[w / 2, 0, (w - 1) / 2], [0, w / 2, (h - 1) / 2], [0, 0, 1.0]])
    lidar2cam = []
    for i in range(6):
        yaw = torch.tensor(2 * torch.pi * i / 6)
        forward = torch.stack([yaw.cos(), yaw.sin(), torch.tensor(0.0)])
        right = torch.stack([yaw.sin(), -yaw.cos(), torch.tensor(0.0)])
        cam2lidar = torch.eye(4)
        cam2lidar[:3, :3] = torch.stack([right, torch.tensor([0.0, 0.0, -1.0]), forward], 1)
        lidar2cam.append(torch.linalg.inv(cam2lidar))
    calib = SensorCalibration(cam2img.expand(1, 6, 3, 3), torch.stack(lidar2cam)[None])
    points = []
    for _ in range(batch):
        xyz = (torch.rand(num_points, 3, generator=gen) * 2 - 1) * torch.tensor([50.0, 50.0, 2.0])
        points.append(torch.cat([xyz, torch.rand(num_points, 1, generator=gen), torch.zeros(num_points, 1)], 1))
    return dict(
        inputs=dict(
            img=[torch.randint(0, 255, (6, 3, h, w), generator=gen, dtype=torch.uint8) for _ in range(batch)],
            calib=[calib] * batch,
            points=points,
        ),
        data_samples=[Det3DDataSample(metainfo=dict(box_type_3d=LiDARInstance3DBoxes)) for _ in range(batch)],
    )


def _peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux ``VmHWM``), in MiB; 0 where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak_rss() -> None:
    """Restarts the ``VmHWM`` count at the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def model_row(setting: str, config: str, device: str, repeats: int, num_points: int, bev_pool: str = "scatter") -> dict:
    """Forward latency (shared layers + raw head outputs, no decoding) and peak memory of one setting."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import MODELS

    init_default_scope("perception_mtl")
    cfg = Config.fromfile(config)
    if cfg.model.encoders.get("camera"):
        cfg.model.encoders.camera.view_transform.bev_pool = bev_pool
    model = MODELS.build(cfg.model).to(device).eval()
    data = model.data_preprocessor(_demo_batch(1, num_points), training=False)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _reset_peak_rss()
    rss_before = _peak_rss_mb()

    def forward():
        with torch.no_grad():
            model(**data, mode="tensor")

    seconds = _median_seconds(forward, repeats, device)
    size = setting if bev_pool == "scatter" or "camera" not in cfg.model.encoders else f"{setting}, {bev_pool} pool"
    row = dict(part="model_forward", size=size, params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    row["latency_ms"] = 1e3 * seconds
    if device.startswith("cuda"):
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        # RSS includes torch/mmdet3d themselves; the forward's own share is the rise over the baseline.
        row["peak_rss_mb"] = _peak_rss_mb()
        row["forward_rss_rise_mb"] = row["peak_rss_mb"] - rss_before
    return row


def _model_row_in_child(queue, *args) -> None:
    queue.put(model_row(*args))


def train_step_rows(args) -> list[dict]:
    """The demo's training step (``model.train_step``: forward, losses, backward, clipping, AdamW) with each
    ``--bev-pool`` path, every path a copy of the same initialised model fed the same real batches.

    Two geometry regimes: one batch re-used every step (fixed geometry, so the sparse path builds its
    plan once and then hits its cache) and a fresh batch every step (the train pipeline's random image
    and BEV augmentation change the geometry, so the sparse path builds a plan every step). Paths are
    timed round-robin; on a CPU the clock is this process's CPU time with ``--threads`` intra-op threads
    (robust to other jobs), on a GPU synchronised wall-clock time. ``plan_builds`` counts the sparse
    path's plan constructions over all steps of the regime (warm-up included).
    """
    import copy
    import statistics

    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import DATASETS, MODELS

    from .m3net_step import load_config

    init_default_scope("perception_mtl")
    device = torch.device(args.device)
    step = train_step_timer(device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)

    rows = []
    for setting in args.train_settings:
        cfg = load_config(DEMO_CONFIGS[setting], args.data_root)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        steps, size = args.warmup + args.repeats, args.batch

        def draw(first: int, dataset=dataset, size=size) -> dict:
            return pseudo_collate([dataset[(first + k) % len(dataset)] for k in range(size)])

        regimes = {
            "fixed geometry": [draw(0)] * steps,
            "new geometry every step": [draw(s * size) for s in range(steps)],
        }
        torch.manual_seed(0)
        base = MODELS.build(cfg.model)
        base.init_weights()
        base.to(device).train()
        runs = []
        for path in args.bev_pool:
            model = copy.deepcopy(base)
            model.encoders["camera"]["view_transform"].bev_pool = path
            runs.append(
                (
                    path,
                    model,
                    OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4), clip_grad=dict(max_norm=35.0)),
                )
            )
        for regime, batches in regimes.items():
            times = {path: [] for path in args.bev_pool}
            builds = {path: model.encoders["camera"]["view_transform"].sparse_cache.misses for path, model, _ in runs}
            label = f"bev_detection: {setting} train step, {regime}, {len(runs)} paths"
            for s, batch in enumerate(track(batches, label)):
                for path, model, wrapper in runs:
                    seconds = step(model, wrapper, batch)
                    if s >= args.warmup:
                        times[path].append(seconds)
            medians = {path: statistics.median(t) for path, t in times.items()}
            reference = medians.get("scatter", medians[args.bev_pool[0]])
            for path, model, _ in runs:
                cache = model.encoders["camera"]["view_transform"].sparse_cache
                row = dict(
                    part="train_step", size=f"{setting}, {regime}", path=path, batch=size, steps=len(times[path])
                )
                row["step_ms"] = 1e3 * medians[path]
                row["step_vs_scatter"] = medians[path] / reference
                row["plan_builds"] = cache.misses - builds[path]
                row["clock"] = "wall" if device.type == "cuda" else f"process, {torch.get_num_threads()} thread(s)"
                rows.append(row)
    return rows


def run(args) -> list[dict]:
    if args.only_train_step:
        return train_step_rows(args)
    rows = pooling_rows(args.pool_size, args.repeats, args.device)
    if args.no_models:
        return rows + (train_step_rows(args) if args.train_step else [])
    rows += head_rows(args.repeats, args.device)
    model_rows = []
    settings = [(s, c, p) for s, c in DEMO_CONFIGS.items() for p in (args.bev_pool if s != "lidar" else ["scatter"])]
    for setting, config, path in track(settings, f"bev_detection: {len(settings)} demo models"):
        row_args = (setting, config, args.device, args.repeats, args.points, path)
        if args.device.startswith("cuda"):
            model_rows.append(model_row(*row_args))
            continue
        # A fresh process per setting, so the peak RSS belongs to that setting alone.
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_model_row_in_child, args=(queue, *row_args))
        proc.start()
        model_rows.append(queue.get())
        proc.join()
    base = next(r["latency_ms"] for r in model_rows if r["size"] == "lidar")
    for row in model_rows:
        row["latency_vs_lidar"] = row["latency_ms"] / base
    rows += model_rows
    return rows + (train_step_rows(args) if args.train_step else [])
