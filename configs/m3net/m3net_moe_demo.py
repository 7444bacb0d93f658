# M3Net demo with a task-routed mixture-of-experts BEV decoder instead of per-task channel scaling: SECOND's
# convolutions stay shared, an MoE feed-forward (8 experts, top 2, one gate per task) follows each stage, and
# the decoder runs once per task on the fused map (FULLER calibrates at the fuser output). Results and
# commands: configs/m3net/README.md.
_base_ = ["./m3net_nuscenes_demo.py"]

model = dict(
    task_scaling=None,
    decoder=dict(
        _delete_=True,
        backbone=dict(
            type="MoEBEVDecoder",
            backbone={{_base_.model.decoder.backbone}},
            neck={{_base_.model.decoder.neck}},
            num_experts=8,
            top_k=2,
            mlp_ratio=1.0,
        ),
    ),
)
custom_hooks = [dict(type="MoEStatsHook", interval=10)]
