"""M3Net training step: FULLER and equal weights against the plain summed loss, on the demo model.

``python tools/benchmark.py m3net_step [--config ...] [--data-root data/synthetic_nuscenes]``

Every method trains its own copy of the same model (``configs/m3net/m3net_nuscenes_demo.py``: camera +
LiDAR, MAFI, TCS, detection + map + occupancy heads) on the same real batch from the synthetic
nuScenes-format data through MMEngine's ``model.train_step``: forward, (balanced) backward, clipping,
AdamW step. Methods are timed round-robin in one process, each row's median divided by the summed
loss's median. On a CPU the clock is this process's CPU time with one intra-op thread (robust to other
jobs on a shared machine); on a GPU synchronised wall-clock time. FULLER's extra work is one head
backward per task at the shared decoder output plus the Gram matrix; the trunk runs backward once.
"""

from __future__ import annotations

import copy
import os.path as osp
import statistics

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing import config_path, on_data_root

from . import track, train_step_timer

DESCRIPTION = "M3Net demo train step: FULLER and equal weights vs the summed loss (ratios in one run)"

# (row name, balancer config or None for MMEngine's plain OptimWrapper on the summed loss)
METHODS: list[tuple[str, dict | None]] = [
    ("sum (OptimWrapper)", None),
    ("EqualWeighting", dict(type="EqualWeighting")),
    ("FULLER imtl_g+mean", dict(type="FULLER", inter="imtl_g", intra="mean")),
    ("FULLER cagrad+mean (the demo's)", dict(type="FULLER", inter="cagrad", intra="mean")),
]


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=str(config_path("m3net_nuscenes_demo.py")))
    parser.add_argument("--data-root", default="data/synthetic_nuscenes", help="synthetic nuScenes-format data")
    parser.add_argument("--batch", type=int, default=2, help="samples per step (the demo's per-GPU batch)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per method first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")


def load_config(path: str, data_root: str) -> Config:
    """The config with its dataset pointed at ``data_root`` (which must hold the generated info files)."""
    info = osp.join(data_root, "nuscenes_infos_train.pkl")
    if not osp.isfile(info):
        raise FileNotFoundError(
            f"m3net_step: {info} not found; generate the data first with "
            f"`python tools/create_data.py synthetic --out-dir {data_root}` or pass --data-root"
        )
    return on_data_root(Config.fromfile(path), data_root)


def _wrapper(model, cfg: Config, balancer: dict | None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=dict(max_norm=35.0))
    if balancer is not None:
        wrapper.update(type="GradBalanceOptimWrapper", balancer=copy.deepcopy(balancer), tasks=cfg.model.tasks)
    return OPTIM_WRAPPERS.build(wrapper)


def run(args) -> list[dict]:
    init_default_scope("perception_mtl")
    device = torch.device(args.device)
    step = train_step_timer(device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.data_root)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(args.batch)])
    torch.manual_seed(0)
    base = MODELS.build(cfg.model).to(device)
    base.init_weights()
    base.train()
    runs = []
    for name, balancer in METHODS:
        model = copy.deepcopy(base)
        runs.append((name, model, _wrapper(model, cfg, balancer), []))

    for _ in range(args.warmup):
        for _, model, wrapper, _ in runs:
            step(model, wrapper, batch)
    for _ in track(range(args.repeats), f"m3net_step: {args.repeats} timed rounds of {len(runs)} methods"):
        for _, model, wrapper, times in runs:  # round-robin: noise lands on every method alike
            times.append(step(model, wrapper, batch))
    reference = statistics.median(runs[0][3])
    rows = []
    for name, _, _, times in runs:
        row = dict(method=name, tasks="+".join(cfg.model.tasks), step_vs_sum=statistics.median(times) / reference)
        if device.type == "cuda":
            row["step_ms"] = 1000 * statistics.median(times)
        row["clock"] = "wall" if device.type == "cuda" else "process"
        row["target"] = "<= 1.10" if name.startswith("FULLER") else ""
        rows.append(row)
    return rows
