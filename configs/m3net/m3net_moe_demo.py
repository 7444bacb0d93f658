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
            backbone=dict(
                type="mmdet3d.SECOND",
                in_channels=32,
                out_channels=[32, 96],
                layer_nums=[1, 1],
                layer_strides=[1, 2],
                norm_cfg=dict(type="BN", eps=1e-3, momentum=0.1),
                conv_cfg=dict(type="Conv2d", bias=False),
            ),
            neck=dict(
                type="mmdet3d.SECONDFPN",
                in_channels=[32, 96],
                out_channels=[32, 32],
                upsample_strides=[1, 2],
                norm_cfg=dict(type="BN", eps=1e-3, momentum=0.1),
                upsample_cfg=dict(type="deconv", bias=False),
            ),
            num_experts=8,
            top_k=2,
            mlp_ratio=1.0,
        ),
    ),
)
custom_hooks = [dict(type="MoEStatsHook", interval=10)]
