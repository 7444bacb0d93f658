# M3Net at full nuScenes size with a task-routed mixture-of-experts BEV decoder in place of per-task channel
# scaling: SECOND's 2 x 5 convolutions shared, an MoE feed-forward (16 experts, top 4, one gate per task)
# after each stage, SECONDFPN -> 512; the decoder runs once per task on the fused map.
_base_ = ["./m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py"]

model = dict(
    task_scaling=None,
    decoder=dict(
        _delete_=True,
        backbone=dict(
            type="MoEBEVDecoder",
            backbone=dict(
                type="mmdet3d.SECOND",
                in_channels=256,
                out_channels=[128, 256],
                layer_nums=[5, 5],
                layer_strides=[1, 2],
                norm_cfg=dict(type="BN", eps=1e-3, momentum=0.01),
                conv_cfg=dict(type="Conv2d", bias=False),
            ),
            neck=dict(
                type="mmdet3d.SECONDFPN",
                in_channels=[128, 256],
                out_channels=[256, 256],
                upsample_strides=[1, 2],
                norm_cfg=dict(type="BN", eps=1e-3, momentum=0.01),
                upsample_cfg=dict(type="deconv", bias=False),
                use_conv_for_no_stride=True,
            ),
            num_experts=16,
            top_k=4,
            mlp_ratio=1.0,
        ),
    ),
)
custom_hooks = [dict(type="MoEStatsHook", interval=50)]
