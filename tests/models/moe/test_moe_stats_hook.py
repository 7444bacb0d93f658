"""Per-task expert statistics reach the training log (message hub) and the epoch table file."""

import json
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from perception_mtl.models.moe import (
    MoEFeedForward,
    MoEStatsHook,
    expert_load_table,
    read_moe_stats,
    summarize_moe_stats,
)


def test_summary_and_table_from_known_counts():
    stats = [
        dict(
            name="blocks.1.ffn",
            rows=("seg", "depth"),
            expert_ids=torch.tensor([0, 1, 2, 3]),
            load=torch.tensor([[6.0, 2.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype=torch.float64),
            zero=torch.tensor([[30.0, 10.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]], dtype=torch.float64),
            hidden=torch.tensor([[60.0, 20.0, 0.0, 0.0], [20.0, 20.0, 20.0, 20.0]], dtype=torch.float64),
            entropy=torch.tensor([2.0, 3.6], dtype=torch.float64),
            tokens=torch.tensor([4.0, 4.0], dtype=torch.float64),
        )
    ]
    summary = summarize_moe_stats(stats)
    assert summary["seg"] == pytest.approx(dict(entropy=0.5, zero_act=0.5, load_max=3.0, dead=2.0))
    assert summary["depth"] == pytest.approx(dict(entropy=0.9, zero_act=0.25, load_max=1.0, dead=0.0))
    table = expert_load_table(stats)
    assert table[0] == dict(layer="blocks.1.ffn", task="seg", e0=75.0, e1=25.0, e2=0.0, e3=0.0)


def test_hook_logs_scalars_and_writes_the_epoch_table(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(MoEFeedForward(8, 8, num_experts=4, top_k=2, tasks=("seg", "depth")))
    hub = MessageHub.get_instance("moe_stats_hook_test")
    runner = SimpleNamespace(
        model=model,
        message_hub=hub,
        logger=logging.getLogger("moe_stats_hook_test"),
        log_dir=str(tmp_path),
        epoch=0,
        iter=0,
        train_loop=SimpleNamespace(max_iters=2),
        max_iters=2,
    )
    hook = MoEStatsHook(interval=2)
    model.train()
    hook.before_train_epoch(runner)
    for it in range(2):
        runner.iter = it
        for task in ("seg", "depth"):
            model[0](torch.randn(16, 8), task)
        hook.after_train_iter(runner, it)
    scalars = hub.log_scalars
    for task in ("seg", "depth"):
        for key in ("entropy", "zero_act", "load_max", "dead"):
            assert f"train/moe.{task}.{key}" in scalars
        assert 0.0 < scalars[f"train/moe.{task}.entropy"].current() <= 1.0
        assert scalars[f"train/moe.{task}.load_max"].current() >= 1.0
    assert read_moe_stats(model)[0]["load"].sum() == 0  # counters were consumed
    hook.after_train_epoch(runner)
    (line,) = (tmp_path / "moe_expert_stats.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["epoch"] == 1 and {row["task"] for row in record["load_table"]} == {"seg", "depth"}
    for row in record["load_table"]:  # 2 iterations x 16 tokens x top-2 per task
        assert sum(v for k, v in row.items() if k.startswith("e")) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="interval"):
        MoEStatsHook(interval=0)
