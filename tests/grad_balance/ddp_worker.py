"""Worker for test_grad_balance_ddp.py: a few balanced train steps under DDP (run with torchrun).

Usage: ``torchrun --nproc_per_node R ddp_worker.py OUT.pt BALANCING_JSON [single]``.
Every rank trains the same GN model from the same seed on its slice of one fixed global batch
(``single``: one process on the whole batch, no DDP); ``{}`` as balancing trains the plain
summed loss with MMEngine's OptimWrapper. Rank 0 saves the final parameters, the logged
balancing statistics, and how many gradient-bucket all-reduces DDP ran (counted by a comm
hook) and how many other all-reduces the balancing issued.
"""

import json
import os
import sys

import torch
import torch.distributed as dist
from mmengine.dataset import pseudo_collate
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import init_default_scope
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from perception_mtl.registry import DATASETS, MODELS, OPTIM_WRAPPERS
from perception_mtl.testing.two_modality import two_modality_net_cfg

GLOBAL_BATCH = 4
STEPS = 3


def main(out: str, balancing: dict, single: bool) -> None:
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(two_modality_net_cfg(norm="GN", branch_channels=8, shared_channels=16, heatmap_radius=3))
    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=64, grid_size=16))
    # Samples with two cars each: the detection loss is normalised by the number of centres, so
    # equal counts per rank make the mean of the ranks' losses the loss of the global batch.
    items = [item for item in map(dataset.__getitem__, range(64)) if len(item["data_samples"].gt_centers) == 2]
    items = items[:GLOBAL_BATCH]
    assert len(items) == GLOBAL_BATCH
    rank, world = 0, 1
    if not single:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        items = items[rank::world]
        model = MMDistributedDataParallel(module=model, device_ids=None, broadcast_buffers=False)
    counts = dict(bucket_allreduces=0, other_allreduces=0)

    def counting_hook(state, bucket):
        counts["bucket_allreduces"] += 1
        return default_hooks.allreduce_hook(None, bucket)

    if not single:
        model.register_comm_hook(None, counting_hook)
        all_reduce = dist.all_reduce

        def counting_all_reduce(*args, **kwargs):
            counts["other_allreduces"] += 1
            return all_reduce(*args, **kwargs)

        dist.all_reduce = counting_all_reduce
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    cfg = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=dict(max_norm=1.0))
    if balancing:
        cfg.update(type="GradBalanceOptimWrapper", balancer=balancing)
    wrapper = OPTIM_WRAPPERS.build(cfg)
    batch = pseudo_collate(items)
    stats = []
    for _ in range(STEPS):
        model.train_step(batch, wrapper)
        stats.append(dict(getattr(wrapper, "last_stats", {})))
    module = model.module if not single else model
    if rank == 0:
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
        torch.save(dict(params=params, stats=stats, steps=STEPS, **counts), out)
    if not single:
        dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1], json.loads(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "single")
