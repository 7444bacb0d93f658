"""tools/train.py under torchrun frees its DDP model before destroying the gloo process group.

Left to interpreter shutdown, a DDP reducer holding gloo work can abort a rank after a finished
run (seen in CI). Here one rank (world size 1) runs in-process, so the order is checked directly.
"""

import gc
import socket

import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel

from perception_mtl.apis.train import main as train_main
from perception_mtl.testing import config_path

SMALL = [
    "train_dataloader.dataset.num_samples=16",
    "train_dataloader.dataset.grid_size=16",
    "train_dataloader.batch_size=8",
    "val_dataloader.dataset.num_samples=8",
    "val_dataloader.dataset.grid_size=16",
    "test_dataloader.dataset.num_samples=8",
    "test_dataloader.dataset.grid_size=16",
    "train_cfg.max_epochs=1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_model_is_gone_before_the_group_is_destroyed(tmp_path, monkeypatch):
    for key, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCAL_RANK", "0")
    alive_at_destroy = []
    destroy = dist.destroy_process_group

    def recording_destroy(*args, **kwargs):
        # gc.get_objects() also lists objects only the cycle collector would free.
        alive_at_destroy.append(sum(isinstance(o, MMDistributedDataParallel) for o in gc.get_objects()))
        return destroy(*args, **kwargs)

    monkeypatch.setattr(dist, "destroy_process_group", recording_destroy)
    args = [
        str(config_path("grad_balance_two_task_ew.py")),
        "--launcher",
        "pytorch",
        "--work-dir",
        str(tmp_path),
        "--cfg-options",
    ]
    try:
        assert train_main([*args, *SMALL]) is None
    finally:
        if dist.is_initialized():
            destroy()
    assert alive_at_destroy == [0]
    assert (tmp_path / "epoch_1.pth").is_file()
