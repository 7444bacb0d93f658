"""Training-step time of every gradient-balancing method relative to the plain summed loss.

All methods train the same two-modality, two-task model (``TwoModalityMultiTaskNet``) on the
same batch through MMEngine's ``model.train_step`` (forward, balanced backward, clipping,
AdamW step). Methods are timed round-robin in one process, so machine noise hits all of them
alike; each row is the median over repeats divided by the median of the summed loss. On a CPU
the clock is this process's CPU time with one intra-op thread by default, which other jobs on a
shared machine barely disturb (wall-clock time there varies by 2x from step to step); on a GPU it
is synchronised wall-clock time.
"""

from __future__ import annotations

import copy
import statistics

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing.two_modality import two_modality_net_cfg

from . import track, train_step_timer

DESCRIPTION = "gradient balancing: train-step time of each method vs the summed loss (ratios in one run)"

# (row name, balancing config or None for MMEngine's plain OptimWrapper on the summed loss)
METHODS: list[tuple[str, dict | None]] = [
    ("sum (OptimWrapper)", None),
    ("EqualWeighting", dict(type="EqualWeighting")),
    ("UncertaintyWeighting", dict(type="UncertaintyWeighting")),
    ("DWA", dict(type="DWA", period=10)),
    ("GradNorm", dict(type="GradNorm", mode="rep")),
    ("GradNorm", dict(type="GradNorm", mode="param")),
    ("MGDA", dict(type="MGDA", mode="rep")),
    ("MGDA", dict(type="MGDA", mode="param")),
    ("PCGrad", dict(type="PCGrad", mode="rep")),
    ("PCGrad", dict(type="PCGrad", mode="param")),
    ("CAGrad", dict(type="CAGrad", mode="rep")),
    ("CAGrad", dict(type="CAGrad", mode="param")),
    ("IMTLG", dict(type="IMTLG", mode="rep")),
    ("IMTLG", dict(type="IMTLG", mode="param")),
    ("NashMTL", dict(type="NashMTL", mode="rep")),
    ("NashMTL", dict(type="NashMTL", mode="param")),
    ("FULLER imtl_g+mean", dict(type="FULLER", inter="imtl_g", intra="mean")),
    ("FULLER pcgrad+mean", dict(type="FULLER", inter="pcgrad", intra="mean")),
    ("FULLER mgda+max", dict(type="FULLER", inter="mgda", intra="max")),
    ("FULLER cagrad+ema", dict(type="FULLER", inter="cagrad", intra="ema")),
]


def add_arguments(parser) -> None:
    parser.add_argument("--batch", type=int, default=16, help="samples per step")
    parser.add_argument("--grid", type=int, default=32, help="BEV cells per side")
    # The defaults are the experiment's model; wider encoders make the heads a smaller share of the
    # step, as in real BEV models whose camera backbone dwarfs the task heads.
    parser.add_argument("--branch-channels", type=int, default=16, help="width of each modality encoder")
    parser.add_argument("--shared-channels", type=int, default=32, help="width of the fused / shared features")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per method first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", default=None, help="row names to keep (the summed loss always runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    parser.add_argument(
        "--clock", choices=("auto", "process", "wall"), default="auto", help="auto: CPU time on CPU, wall on GPU"
    )


_LOSS_ONLY = ("EqualWeighting", "UncertaintyWeighting", "DWA")


def _mode(cfg: dict | None) -> str:
    return "-" if cfg is None or cfg["type"] in _LOSS_ONLY else cfg.get("mode", "rep")


def _passes(cfg: dict | None) -> str:
    """Backward work per step besides the one full backward every method runs."""
    mode = _mode(cfg)
    return {"-": "-", "rep": "T head (input grad)", "param": "T head + T backbone"}[mode]


def _build(model, cfg: dict | None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=dict(max_norm=10.0))
    if cfg is not None:
        wrapper.update(type="GradBalanceOptimWrapper", balancer=copy.deepcopy(cfg), tasks=("det", "map"))
    return OPTIM_WRAPPERS.build(wrapper)


def run(args) -> list[dict]:
    init_default_scope("perception_mtl")
    device = torch.device(args.device)
    clock = args.clock if args.clock != "auto" else ("wall" if device.type == "cuda" else "process")
    step = train_step_timer(device, clock)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    methods = [m for m in METHODS if m[1] is None or args.only is None or m[0] in args.only]
    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=args.batch, grid_size=args.grid))
    batch = pseudo_collate([dataset[i] for i in range(args.batch)])
    torch.manual_seed(0)
    base = MODELS.build(
        two_modality_net_cfg(branch_channels=args.branch_channels, shared_channels=args.shared_channels)
    ).to(device)
    runs = []
    for name, cfg in methods:
        model = copy.deepcopy(base)
        runs.append((name, cfg, model, _build(model, cfg), []))

    for _ in range(args.warmup):
        for _, _, model, wrapper, _ in runs:
            step(model, wrapper, batch)
    for _ in track(range(args.repeats), f"grad_balance: {args.repeats} timed rounds of {len(runs)} methods"):
        for _, _, model, wrapper, times in runs:  # round-robin: noise lands on every method alike
            times.append(step(model, wrapper, batch))
    reference = statistics.median(runs[0][4])
    rows = []
    for name, cfg, _, _, times in runs:
        median = statistics.median(times)
        row = dict(
            method=name,
            mode=_mode(cfg),
            extra_backward=_passes(cfg),
            step_vs_sum=median / reference,
            iqr_vs_sum=(_quantile(times, 0.75) - _quantile(times, 0.25)) / reference,
        )
        if device.type == "cuda":
            row["step_ms"] = 1000 * median
        row["clock"] = clock
        if name.startswith("FULLER"):
            row["target"] = "<= 1.10"
        rows.append(row)
    return rows


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
