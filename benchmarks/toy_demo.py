"""Forward/backward cost of the toy demo model at two widths, as ratios to the narrow one."""

import time

import torch

from perception_mtl.models.detectors import ToyBEVSegmentor

DESCRIPTION = "toy demo model: train-step time and parameters vs width (ratios in one run)"


def add_arguments(parser) -> None:
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--grid", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)


def _step_seconds(model, bev, target, repeats) -> float:
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        logits = model(dict(bev=bev), mode="tensor")
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]  # median after warm-up


def run(args) -> list[dict]:
    torch.manual_seed(0)
    bev = torch.randn(args.batch, 2, args.grid, args.grid)
    target = (torch.rand(args.batch, 2, args.grid, args.grid) > 0.9).float()
    rows, base = [], None
    for width in (8, 16, 32):
        model = ToyBEVSegmentor(base_channels=width)
        seconds = _step_seconds(model, bev, target, args.repeats)
        base = base or seconds
        params = sum(p.numel() for p in model.parameters())
        rows.append(dict(base_channels=width, params=params, step_time_vs_width8=seconds / base))
    return rows
